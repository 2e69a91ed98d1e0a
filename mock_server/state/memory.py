"""In-process simulation state: the default. Dicts and heaps, one process, nothing to install.

Records are evicted once their ``evict_at`` has passed, or, past ``max_jobs``, oldest first, so a
long run cannot exhaust memory; a job evicted while still waiting leaves its queue.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import os
import random
from collections import Counter, deque
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from ..clock import Clock
from ..faults import Passage, ScriptedFault, count_in_window, script_scopes
from ..ids import tag_of
from ..journal import Journal, Request
from ..lifecycle import JobRecord, PollDriven, Slotted, next_change, state_at
from ..scheduler import FifoQueue
from ..vocab import Operation, Phase
from .base import (
    Admission,
    Census,
    Created,
    Gate,
    Identity,
    Page,
    Read,
    Stored,
    kept_bytes,
    listed,
)
from .census import PhaseCensus

__all__ = ["MemoryState", "at_once"]

T = TypeVar("T")


def at_once(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine of the in-memory state from synchronous code: it never waits, so it
    finishes on its first step (a coroutine that would wait is an error, never a hang)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the simulation state had to wait: call it from async code")

_OPEN = Passage()


class MemoryState:
    """Every piece of simulation state in this process (see :mod:`.base` for the contract)."""

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int | None = None,
        signing_key: bytes | None = None,
        max_jobs: int = 2_000_000,
        journal: Journal | None = None,
        incarnation: str | None = None,
    ) -> None:
        self.clock = clock
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.rng = random.Random(self.seed)
        # Random per run (tests may fix it to compare two apps byte for byte).
        incarnation = incarnation or os.urandom(8).hex()
        # Under a seed, ids are reproducible, tag included: a restart replays them.
        self.identity = Identity(
            tag=tag_of(f"seed:{seed}" if seed is not None else incarnation),
            secret=signing_key or os.urandom(32),
            incarnation=incarnation)
        self.max_jobs = max_jobs
        #: The journal, for in-process readers (``await journal()`` for everyone).
        self.log = journal or Journal()
        self._jobs: dict[str, tuple[JobRecord, int]] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._queues: dict[str, FifoQueue] = {}
        self._polls: Counter[str] = Counter()
        self._scripts: dict[tuple[str | None, Operation | None], deque[ScriptedFault]] = {}
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        #: Bytes of submitted bodies the live jobs of each owner keep.
        self._kept: Counter[str] = Counter()
        #: Job ids by (provider, owner), in creation order (for listing without a scan).
        self._owned: dict[tuple[str, str], dict[str, None]] = {}
        self._creates = 0
        self._preset = ""
        self._census = PhaseCensus()
        #: Records evicted so far (by time or by the cap).
        self.evicted = 0

    # -- gate ---------------------------------------------------------------------------------

    async def passage(self, gate: Gate, now: float) -> Passage:
        return self._pass(gate, now)

    def _pass(self, gate: Gate, now: float) -> Passage:
        if not self._scripts and (gate.limit is None or not gate.key):
            return _OPEN  # nothing scripted, nothing counted
        script = None
        if self._scripts:
            for scope in script_scopes(gate.provider, gate.operation):
                queue = self._scripts.get(scope)
                if queue:
                    script = queue.popleft()
                    break
        wait = None
        if gate.limit is not None and gate.key:
            bucket = "submit" if gate.operation is Operation.SUBMIT else "poll"
            window, wait = count_in_window(self._windows.get((bucket, gate.key)), gate.limit, now)
            self._windows[(bucket, gate.key)] = window
            if len(self._windows) > 100_000:  # forget windows of keys gone quiet
                self._windows = {k: v for k, v in self._windows.items() if v[0] >= window[0]}
        return Passage(script, wait)

    # -- jobs ---------------------------------------------------------------------------------

    async def create(self, record: JobRecord, admission: Admission | None, now: float,
                     gate: Gate | None = None, budget: int | None = None) -> Created:
        passage = self._pass(gate, now) if gate is not None else _OPEN
        if passage.blocks:
            return Created(passage, None)
        self._evict(now)
        if record.id in self._jobs:
            return Created(passage, None, taken=True)
        cost = kept_bytes(record)
        if budget is not None and self._kept[record.owner] + cost > budget:
            return Created(passage, None, over_budget=True)
        self._kept[record.owner] += cost
        self._creates += 1
        if self._creates % 1024 == 0:  # forget the queues of keys gone quiet
            self._queues = {k: q for k, q in self._queues.items() if not q.idle(now)}
        if len(self._jobs) >= self.max_jobs:  # dicts keep insertion order: the oldest goes,
            self._forget(next(iter(self._jobs)), now)  # before the queue places this one
        position = None
        if admission is not None:
            queue = self._queue(admission)
            seq, start, end = queue.admit(record.id, ready_at=admission.ready_at,
                                          run_seconds=admission.run_seconds, now=now,
                                          expires_at=record.expires_at)
            record = dataclasses.replace(record, schedule=Slotted(admission.queue, seq),
                                         start_at=start, end_at=end)
            self._apply(queue)
            if start > now:
                position = queue.position(seq, now=now)
        self._put(record, 0, now)
        return Created(passage, Stored(record, 0, position))

    async def read(self, job_id: str, now: float, gate: Gate | None = None) -> Read:
        passage = self._pass(gate, now) if gate is not None else _OPEN
        return Read(passage, self._read(job_id, now))

    def _read(self, job_id: str, now: float) -> Stored | None:
        found = self._jobs.get(job_id)
        if found is None:
            return None
        record, version = found
        schedule = record.schedule
        if isinstance(schedule, Slotted) and record.start_at > now:
            queue = self._queues.get(schedule.queue)
            if queue is not None:
                position = queue.position(schedule.seq, now=now)
                if self._apply(queue):
                    record, version = self._jobs[job_id]
                if record.start_at > now and record.cancelled_at is None:
                    return Stored(record, version, position)
        return Stored(record, version)

    async def jobs_of(self, provider: str, owner: str, now: float, *, offset: int, limit: int,
                      since: float | None = None, until: float | None = None,
                      phases: frozenset[Phase] | None = None, model: str | None = None
                      ) -> Page:
        ids = self._owned.get((provider, owner))
        if not ids:
            return Page((), 0)
        page: list[Stored] = []
        total = 0
        for job_id in reversed(ids):  # newest first; reading never changes the index
            if self._jobs[job_id][0].evict_at <= now:
                continue
            stored = self._read(job_id, now)
            assert stored is not None
            if not listed(stored.record, now, since=since, until=until, phases=phases,
                          model=model):
                continue
            if offset <= total < offset + limit:
                page.append(stored)
            total += 1
        return Page(tuple(page), total)

    async def waiting(self, queue: str, now: float) -> int:
        found = self._queues.get(queue)
        if found is None:
            return 0
        found.idle(now)  # settles it
        self._apply(found)
        return len(found)

    async def cancel(self, job_id: str, version: int, now: float, *, queued: bool
                     ) -> Stored | None:
        found = self._jobs.get(job_id)
        if found is None or found[1] != version:
            return None
        record = found[0]
        if queued:
            schedule = record.schedule
            if isinstance(schedule, Slotted):
                queue = self._queues.get(schedule.queue)
                if queue is not None and queue.cancel(schedule.seq, now=now):
                    self._apply(queue)
            record = dataclasses.replace(record, cancelled_at=now, start_at=math.inf,
                                         end_at=math.inf)
        else:
            record = dataclasses.replace(record, cancelled_at=now)
        self._put(record, version + 1, now)
        return Stored(record, version + 1)

    async def count_poll(self, job_id: str, now: float) -> Stored | None:
        found = self._jobs.get(job_id)
        if found is None:
            return None
        record, version = found
        schedule = record.schedule
        if not isinstance(schedule, PollDriven) or state_at(record, now).phase.terminal:
            return Stored(record, version)
        self._polls[job_id] += 1
        if self._polls[job_id] < schedule.polls:
            return Stored(record, version)
        del self._polls[job_id]
        record = dataclasses.replace(record, start_at=min(record.start_at, now), end_at=now)
        self._put(record, version + 1, now)
        return Stored(record, version + 1)

    # -- scripts ------------------------------------------------------------------------------

    async def script(self, faults: Iterable[ScriptedFault], *, provider: str | None,
                     operation: Operation | None) -> int:
        queue = self._scripts.setdefault((provider, operation), deque())
        queue.extend(faults)
        return len(queue)

    async def scripted(self) -> dict[str, list[str]]:
        return {f"{p or '*'}:{o or '*'}": [str(f.fault) for f in q]
                for (p, o), q in self._scripts.items() if q}

    # -- settings -----------------------------------------------------------------------------

    async def preset(self) -> str:
        return self._preset

    async def set_preset(self, name: str) -> None:
        self._preset = name

    # -- journal ------------------------------------------------------------------------------

    async def record(self, request: Request) -> None:
        self.log.add(request)

    async def journal(self) -> Journal:
        return self.log

    # -- the rest -----------------------------------------------------------------------------

    async def census(self, now: float) -> Census:
        queues = {}
        for name, queue in self._queues.items():
            queue.idle(now)  # settles it
            self._apply(queue)
            queues[name] = (len(queue), queue.busy(now))
        census = self._census
        return Census(census.jobs(now), queues, len(self._jobs), census.submitted(),
                      census.finished(now))

    async def next_change(self, now: float) -> float | None:
        soonest = math.inf
        for record, _ in self._jobs.values():
            if not state_at(record, now).phase.terminal:
                soonest = min(soonest, next_change(record, now))
        return None if math.isinf(soonest) else soonest

    async def reset(self) -> None:
        self._jobs.clear()
        self._deadlines.clear()
        self._kept.clear()
        self._owned.clear()
        self._census.clear()
        self._queues.clear()
        self._polls.clear()
        self._scripts.clear()
        self._windows.clear()
        self.log.reset()
        self._creates = 0
        self.rng = random.Random(self.seed)

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        """Jobs held."""
        return len(self._jobs)

    @property
    def queue_count(self) -> int:
        """How many queues are held (idle ones are forgotten now and then)."""
        return len(self._queues)

    def _queue(self, admission: Admission) -> FifoQueue:
        queue = self._queues.get(admission.queue)
        if queue is None:
            queue = self._queues[admission.queue] = FifoQueue(admission.concurrency)
        return queue

    def _apply(self, queue: FifoQueue) -> bool:
        """Write the schedules a queue changed into their records (a new version each)."""
        changed = queue.take_changes()
        for slot in changed:
            found = self._jobs.get(slot.job_id)
            if found is not None:
                record, version = found
                moved = dataclasses.replace(record, start_at=slot.start, end_at=slot.end)
                self._census.replace(record, moved)
                self._jobs[slot.job_id] = (moved, version + 1)
        return bool(changed)

    def _put(self, record: JobRecord, version: int, now: float) -> None:
        found = self._jobs.get(record.id)
        if found is None:
            heapq.heappush(self._deadlines, (record.evict_at, record.id))
            self._owned.setdefault((record.provider, record.owner), {})[record.id] = None
            self._census.admit(record)
        else:
            self._census.replace(found[0], record)
        self._jobs[record.id] = (record, version)

    def _forget(self, job_id: str, now: float) -> None:
        record, _ = self._jobs.pop(job_id)
        self._census.forget(record, now)
        self.evicted += 1
        left = self._kept[record.owner] - kept_bytes(record)
        if left > 0:
            self._kept[record.owner] = left
        else:
            del self._kept[record.owner]
        self._polls.pop(job_id, None)
        owned = self._owned.get((record.provider, record.owner))
        if owned is not None:
            owned.pop(job_id, None)
            if not owned:
                del self._owned[(record.provider, record.owner)]
        schedule = record.schedule
        if isinstance(schedule, Slotted) and record.start_at > now:
            queue = self._queues.get(schedule.queue)
            if queue is not None and queue.cancel(schedule.seq, now=now):
                self._apply(queue)

    def _evict(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, job_id = heapq.heappop(deadlines)
            found = self._jobs.get(job_id)
            if found is not None and found[0].evict_at <= now:
                self._forget(job_id, now)
        if len(deadlines) > 2 * len(self._jobs) + 1024:  # drop entries of cap-evicted jobs
            self._deadlines = [(t, i) for t, i in deadlines if i in self._jobs]
            heapq.heapify(self._deadlines)
