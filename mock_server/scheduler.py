"""FIFO queues with a fixed number of concurrent slots, computed from timestamps.

Start times are fixed when a job is admitted (``start = max(ready, earliest free slot, previous
start, now)``), so no timer runs per job. Only a job leaving the queue before it starts changes
the future — cancelled, expired while still waiting, or evicted — and then the jobs behind it are
rescheduled from the moment it left, never into the past. Start times are non-decreasing in
submission order, so a queued job's ``queue_position`` is one bisection.

A queue is settled lazily: every call first plays, in time order, what happened up to ``now``
(jobs starting, waiting jobs expiring). Jobs whose start or end changed are collected; the owner
takes them with :meth:`FifoQueue.take_changes` and updates their records.

>>> q = FifoQueue(concurrency=1)
>>> [q.admit(f"j{i}", ready_at=0.0, run_seconds=10.0, now=0.0)[1:] for i in range(3)]
[(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
>>> q.position(2, now=5.0), q.position(2, now=15.0)
(1, 0)
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass

__all__ = ["FifoQueue", "Slot", "next_start"]


def next_start(free: list[float], last_start: float, ready_at: float,
               now: float) -> tuple[int, float]:
    """The FIFO rule: which slot a job takes and when it starts (the one formula).

    >>> next_start([5.0, 20.0], last_start=3.0, ready_at=1.0, now=2.0)
    (0, 5.0)
    """
    slot = min(range(len(free)), key=free.__getitem__)
    return slot, max(ready_at, free[slot], last_start, now)


@dataclass(slots=True)
class Slot:
    """A waiting job's place: its order, when it may start, how long it runs, its schedule."""

    seq: int
    job_id: str
    ready_at: float
    run_seconds: float
    start: float
    end: float
    #: When the job expires; if it is still waiting then, it leaves the queue.
    expires_at: float = math.inf


class FifoQueue:
    """One FIFO queue feeding ``concurrency`` slots."""

    __slots__ = ("_by_seq", "_changed", "_expiries", "_head", "_last_start", "_next_seq",
                 "_seqs", "_slot_free", "_tail", "_waiting", "concurrency")

    def __init__(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        #: When each slot becomes free after every job *already started* has finished.
        self._slot_free = [-math.inf] * concurrency
        #: When each slot becomes free once every *waiting* job has run too.
        self._tail = list(self._slot_free)
        self._last_start = -math.inf
        self._next_seq = 0
        # Jobs admitted but not started at the last settle, in seq order (from ``_head`` on).
        self._waiting: list[Slot] = []
        self._seqs: list[int] = []
        self._head = 0
        self._by_seq: dict[int, Slot] = {}
        #: (expires_at, seq) of waiting jobs that may expire before they start.
        self._expiries: list[tuple[float, int]] = []
        self._changed: dict[int, Slot] = {}

    def __len__(self) -> int:
        """Number of jobs waiting (as of the last call that passed a time)."""
        return len(self._waiting) - self._head

    def idle(self, now: float) -> bool:
        """True when nothing waits and every slot is free: a fresh queue would behave the same."""
        self._settle(now)
        return len(self) == 0 and max(self._slot_free) <= now

    def busy(self, now: float) -> int:
        """Slots running a job at ``now``."""
        self._settle(now)
        return sum(free > now for free in self._slot_free)

    def admit(
        self, job_id: str, *, ready_at: float, run_seconds: float, now: float,
        expires_at: float = math.inf,
    ) -> tuple[int, float, float]:
        """Queue a job that may start at ``ready_at``; returns ``(seq, start, end)``."""
        self._settle(now)
        seq = self._next_seq
        self._next_seq += 1
        free = self._tail
        last_start = self._waiting[-1].start if len(self) else self._last_start
        slot_index, start = next_start(free, last_start, ready_at, now)
        end = start + run_seconds
        free[slot_index] = end
        entry = Slot(seq, job_id, ready_at, run_seconds, start, end, expires_at)
        if start <= now:
            self._commit(entry)
        else:
            self._waiting.append(entry)
            self._seqs.append(seq)
            self._by_seq[seq] = entry
            if expires_at < start:
                heapq.heappush(self._expiries, (expires_at, seq))
        return seq, start, end

    def position(self, seq: int, *, now: float) -> int:
        """How many jobs are ahead of ``seq`` and not yet started at ``now``."""
        self._settle(now)
        return bisect.bisect_left(self._seqs, seq, lo=self._head) - self._head

    def cancel(self, seq: int, *, now: float) -> bool:
        """Take a waiting job out at ``now`` (cancelled or evicted); ``False`` if it was not
        waiting. The jobs behind it are rescheduled (see :meth:`take_changes`)."""
        self._settle(now)
        return self._remove(seq, now)

    def take_changes(self) -> list[Slot]:
        """Waiting jobs whose start or end changed since the last call (to update records)."""
        if not self._changed:
            return []
        changed = list(self._changed.values())
        self._changed.clear()
        return changed

    def _remove(self, seq: int, at: float) -> bool:
        index = bisect.bisect_left(self._seqs, seq, lo=self._head)
        if index == len(self._seqs) or self._seqs[index] != seq:
            return False
        del self._waiting[index]
        del self._seqs[index]
        del self._by_seq[seq]
        self._changed.pop(seq, None)
        self._reschedule(at)
        return True

    def _reschedule(self, at: float) -> None:
        free = list(self._slot_free)
        last_start = self._last_start
        for entry in self._waiting[self._head:]:
            i, start = next_start(free, last_start, entry.ready_at, at)
            if start != entry.start:
                entry.start, entry.end = start, start + entry.run_seconds
                self._changed[entry.seq] = entry
                if entry.expires_at < start:
                    heapq.heappush(self._expiries, (entry.expires_at, entry.seq))
            free[i] = entry.end
            last_start = start
        self._tail = free

    def _commit(self, entry: Slot) -> None:
        i = min(range(self.concurrency), key=self._slot_free.__getitem__)
        self._slot_free[i] = entry.end
        self._last_start = max(self._last_start, entry.start)

    def _settle(self, now: float) -> None:
        """Play what happened up to ``now`` in time order: starts and waiting jobs' expiries."""
        waiting, expiries = self._waiting, self._expiries
        while True:
            start = waiting[self._head].start if self._head < len(waiting) else math.inf
            while expiries and expiries[0][1] not in self._by_seq:
                heapq.heappop(expiries)  # started or removed meanwhile
            expiry = expiries[0][0] if expiries else math.inf
            if min(start, expiry) > now:
                break
            if start <= expiry:
                entry = waiting[self._head]
                del self._by_seq[entry.seq]
                self._commit(entry)
                self._head += 1
                continue
            _, seq = heapq.heappop(expiries)
            entry = self._by_seq[seq]
            if entry.start <= expiry:
                continue  # rescheduled to start before it expires: it will start
            self._remove(seq, expiry)  # a ghost: it expired while waiting
        head = self._head
        if head > 64 and head * 2 > len(waiting):
            del waiting[:head]
            del self._seqs[:head]
            self._head = 0
