"""FIFO queues with a fixed number of concurrent slots, computed from timestamps.

Start times are fixed when a job is admitted (``start = max(ready, earliest free slot, previous
start)``), so no timer runs per job. Only a cancellation of a waiting job changes the future: the
jobs behind it are rescheduled, never to a time already in the past. Start times are non-decreasing
in submission order, so a queued job's ``queue_position`` is one bisection.

>>> q = FifoQueue(concurrency=1)
>>> [q.admit(f"j{i}", ready_at=0.0, run_seconds=10.0, now=0.0)[1:] for i in range(3)]
[(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
>>> q.position(2, now=5.0), q.position(2, now=15.0)
(1, 0)
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

__all__ = ["FifoQueue", "Slot"]


@dataclass(slots=True)
class Slot:
    """A waiting job's place: its order, when it may start, how long it runs, its schedule."""

    seq: int
    job_id: str
    ready_at: float
    run_seconds: float
    start: float
    end: float


class FifoQueue:
    """One FIFO queue feeding ``concurrency`` slots."""

    __slots__ = ("_head", "_last_start", "_next_seq", "_seqs", "_slot_free", "_tail",
                 "_waiting", "concurrency")

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
        # Jobs admitted but not started at the last prune, in seq order (from ``_head`` on).
        self._waiting: list[Slot] = []
        self._seqs: list[int] = []
        self._head = 0

    def __len__(self) -> int:
        """Number of jobs waiting (as of the last call that passed a time)."""
        return len(self._waiting) - self._head

    def idle(self, now: float) -> bool:
        """True when nothing waits and every slot is free: a fresh queue would behave the same."""
        self._prune(now)
        return len(self) == 0 and max(self._slot_free) <= now

    def admit(
        self, job_id: str, *, ready_at: float, run_seconds: float, now: float
    ) -> tuple[int, float, float]:
        """Queue a job that may start at ``ready_at``; returns ``(seq, start, end)``."""
        self._prune(now)
        seq = self._next_seq
        self._next_seq += 1
        free = self._tail
        slot_index = min(range(self.concurrency), key=free.__getitem__)
        last_start = self._waiting[-1].start if len(self) else self._last_start
        start = max(ready_at, free[slot_index], last_start, now)
        end = start + run_seconds
        free[slot_index] = end
        entry = Slot(seq, job_id, ready_at, run_seconds, start, end)
        if start <= now:
            self._commit(entry)
        else:
            self._waiting.append(entry)
            self._seqs.append(seq)
        return seq, start, end

    def position(self, seq: int, *, now: float) -> int:
        """How many jobs are ahead of ``seq`` and not yet started at ``now``."""
        self._prune(now)
        return bisect.bisect_left(self._seqs, seq, lo=self._head) - self._head

    def cancel(self, seq: int, *, now: float) -> list[Slot]:
        """Remove a waiting job; returns the waiting jobs whose schedule changed as a result."""
        self._prune(now)
        index = bisect.bisect_left(self._seqs, seq, lo=self._head)
        if index == len(self._seqs) or self._seqs[index] != seq:
            return []
        del self._waiting[index]
        del self._seqs[index]
        return self._reschedule(now)

    def _reschedule(self, now: float) -> list[Slot]:
        free = list(self._slot_free)
        last_start = self._last_start
        changed = []
        for entry in self._waiting[self._head:]:
            i = min(range(self.concurrency), key=free.__getitem__)
            start = max(entry.ready_at, free[i], last_start, now)
            if start != entry.start:
                entry.start, entry.end = start, start + entry.run_seconds
                changed.append(entry)
            free[i] = entry.end
            last_start = start
        self._tail = free
        return changed

    def _commit(self, entry: Slot) -> None:
        i = min(range(self.concurrency), key=self._slot_free.__getitem__)
        self._slot_free[i] = entry.end
        self._last_start = max(self._last_start, entry.start)

    def _prune(self, now: float) -> None:
        waiting = self._waiting
        head = self._head
        while head < len(waiting) and waiting[head].start <= now:
            self._commit(waiting[head])
            head += 1
        if head > 64 and head * 2 > len(waiting):
            del waiting[:head]
            del self._seqs[:head]
            head = 0
        self._head = head
