"""Where job records live. The core talks to the :class:`JobStore` protocol only.

:class:`MemoryStore` keeps records in a dict and evicts them once their ``evict_at`` has passed,
or, past ``max_jobs``, oldest first — so a long run cannot exhaust memory.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from .lifecycle import JobRecord

__all__ = ["JobStore", "MemoryStore"]


@runtime_checkable
class JobStore(Protocol):
    """Storage for job records, keyed by job id."""

    def get(self, job_id: str) -> JobRecord | None:
        """The record, or ``None`` if unknown or evicted."""
        ...

    def put(self, record: JobRecord) -> None:
        """Insert or replace a record."""
        ...

    def evict(self, now: float) -> int:
        """Forget records whose ``evict_at`` is ``<= now``; returns how many went."""
        ...

    def clear(self) -> None:
        """Forget every record."""
        ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[JobRecord]: ...


class MemoryStore:
    """An in-process store; ``max_jobs`` caps how many records are kept."""

    def __init__(self, *, max_jobs: int = 2_000_000) -> None:
        self.max_jobs = max_jobs
        self._jobs: dict[str, JobRecord] = {}
        self._deadlines: list[tuple[float, str]] = []
        #: Total records evicted so far (by time or by the cap).
        self.evicted = 0

    def get(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    def put(self, record: JobRecord) -> None:
        if record.id not in self._jobs:
            heapq.heappush(self._deadlines, (record.evict_at, record.id))
            if len(self._jobs) >= self.max_jobs:
                del self._jobs[next(iter(self._jobs))]  # dicts keep insertion order: the oldest
                self.evicted += 1
        self._jobs[record.id] = record

    def evict(self, now: float) -> int:
        gone = 0
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, job_id = heapq.heappop(deadlines)
            record = self._jobs.get(job_id)
            if record is not None and record.evict_at <= now:
                del self._jobs[job_id]
                gone += 1
        if len(deadlines) > 2 * len(self._jobs) + 1024:  # drop entries of cap-evicted jobs
            self._deadlines = [(t, i) for t, i in deadlines if i in self._jobs]
            heapq.heapify(self._deadlines)
        self.evicted += gone
        return gone

    def clear(self) -> None:
        self._jobs.clear()
        self._deadlines.clear()

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(list(self._jobs.values()))
