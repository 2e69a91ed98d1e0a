"""The journal: every request the fake answered, and how each client treated each job.

Bounded: requests live in a ring buffer, per-job summaries in an LRU of fixed size, so a long load
run cannot exhaust memory. Readable from Python (``app.state.wanmock.journal``) and through
``GET /__admin/journal``. The flags it raises are the client behaviours a test wants to judge:

* ``poll-after-terminal`` — a status poll after the client was already shown a terminal status;
* ``ignored-retry-after`` — a request sooner than a ``Retry-After`` this key was given;
* ``result-before-success`` — a result/content fetch before the job succeeded.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .vocab import Operation, Phase

__all__ = ["Entry", "JobSummary", "Journal"]

#: Operation by name (members hash as their value, so a member finds itself too).
_OPERATIONS: dict[str, Operation] = {op.value: op for op in Operation}

POLL_AFTER_TERMINAL = "poll-after-terminal"
IGNORED_RETRY_AFTER = "ignored-retry-after"
RESULT_BEFORE_SUCCESS = "result-before-success"


class Entry(NamedTuple):
    """One answered request (a named tuple: the journal makes one per request)."""

    seq: int
    provider: str | None
    #: An :class:`~wanmock.server.vocab.Operation`'s value, or what the route was called.
    operation: str | None
    method: str
    path: str
    job_id: str | None
    #: Hash of the API key (never the key).
    key: str | None
    status: int
    #: Simulated time the request arrived, and real (wall-clock) time it was answered.
    sim_time: float
    real_time: float
    duration_ms: float
    #: The job's phase as the response showed it (a :class:`~wanmock.server.vocab.Phase` value).
    phase: str | None = None
    fault: str | None = None
    retry_after: float | None = None
    #: Request validation problems, as ``field: rule``.
    violations: tuple[str, ...] = ()
    #: Client-behaviour flags raised by this request (see the module docstring).
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(slots=True)
class JobSummary:
    """How clients treated one job."""

    job_id: str
    provider: str | None
    key: str | None
    submitted_at: float | None = None
    polls: int = 0
    #: Simulated times of the most recent polls (bounded).
    poll_times: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    min_poll_interval: float | None = None
    terminal_seen_at: float | None = None
    terminal_phase: str | None = None
    polls_after_terminal: int = 0
    ignored_retry_after: int = 0
    results_before_success: int = 0
    result_fetches: int = 0
    downloads: int = 0
    faults: int = 0
    cancels: int = 0

    def intervals(self) -> list[float]:
        """Seconds between consecutive recorded polls."""
        times = list(self.poll_times)
        return [b - a for a, b in itertools.pairwise(times)]

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["poll_times"] = list(self.poll_times)
        data["intervals"] = self.intervals()
        return data


class Journal:
    """Bounded record of requests and per-job client behaviour."""

    def __init__(self, *, capacity: int = 10_000, max_jobs: int = 10_000) -> None:
        self.capacity = capacity
        self.max_jobs = max_jobs
        # Plain tuples of strings and numbers, which the garbage collector stops tracking:
        # a full ring then costs collections nothing (an ``Entry`` is made when read).
        self._ring: deque[tuple[Any, ...]] = deque(maxlen=capacity)
        self._jobs: OrderedDict[str, JobSummary] = OrderedDict()
        self._not_before: dict[str, float] = {}
        self._seq = itertools.count()
        #: Requests recorded since the last reset (the ring buffer may hold fewer).
        self.total = 0

    def record(
        self,
        *,
        provider: str | None,
        operation: Operation | str | None,
        method: str,
        path: str,
        job_id: str | None,
        key: str | None,
        status: int,
        sim_time: float,
        real_time: float,
        duration_ms: float,
        phase: Phase | None = None,
        fault: str | None = None,
        retry_after: float | None = None,
        violations: Iterable[str] = (),
    ) -> Entry:
        """Add one request; updates the job's summary and returns the entry with its flags."""
        flags: tuple[str, ...] = ()
        op = _OPERATIONS.get(operation) if operation is not None else None
        if key is not None:
            not_before = self._not_before.get(key) if self._not_before else None
            if not_before is not None and sim_time < not_before:
                flags = (IGNORED_RETRY_AFTER,)
            if retry_after is not None:
                self._not_before[key] = sim_time + retry_after
                if len(self._not_before) > self.max_jobs:  # forget waits already over
                    self._not_before = {k: t for k, t in self._not_before.items()
                                        if t > sim_time}
        if job_id:
            flags = self._update(self._summary(job_id, provider, key), op, status, phase,
                                 sim_time, fault, flags)
        row = (next(self._seq), provider, op._value_ if op else operation, method, path, job_id,
               key, status, sim_time, real_time, duration_ms, phase._value_ if phase else None,
               fault, retry_after, tuple(violations) if violations else (), flags)
        self._ring.append(row)
        self.total += 1
        return Entry._make(row)

    @property
    def entries(self) -> list[Entry]:
        """The retained entries, oldest first."""
        return list(map(Entry._make, self._ring))

    def job(self, job_id: str) -> JobSummary | None:
        """The summary of one job, if still retained."""
        return self._jobs.get(job_id)

    def jobs(self) -> list[JobSummary]:
        """Every retained job summary, oldest first."""
        return list(self._jobs.values())

    def query(
        self, *, job_id: str | None = None, provider: str | None = None,
        key: str | None = None, limit: int | None = None,
    ) -> list[Entry]:
        """Retained entries, oldest first, filtered; ``limit`` keeps the most recent."""
        found = [e for e in map(Entry._make, self._ring)
                 if (job_id is None or e.job_id == job_id)
                 and (provider is None or e.provider == provider)
                 and (key is None or e.key == key)]
        return found[-limit:] if limit else found

    def reset(self) -> None:
        self._ring.clear()
        self._jobs.clear()
        self._not_before.clear()
        self.total = 0

    def _summary(self, job_id: str, provider: str | None, key: str | None) -> JobSummary:
        summary = self._jobs.get(job_id)
        if summary is None:
            summary = self._jobs[job_id] = JobSummary(job_id, provider, key)
            if len(self._jobs) > self.max_jobs:
                self._jobs.popitem(last=False)
        else:
            self._jobs.move_to_end(job_id)
        return summary

    @staticmethod
    def _update(summary: JobSummary, op: Operation | None, status: int, phase: Phase | None,
                now: float, fault: str | None, flags: tuple[str, ...]) -> tuple[str, ...]:
        """Count the request in the job's summary; returns ``flags`` plus any it raises."""
        if fault:
            summary.faults += 1
        if IGNORED_RETRY_AFTER in flags:
            summary.ignored_retry_after += 1
        if op is Operation.SUBMIT:
            summary.submitted_at = now
        elif op is Operation.STATUS:
            summary.polls += 1
            if summary.poll_times:
                gap = now - summary.poll_times[-1]
                if summary.min_poll_interval is None or gap < summary.min_poll_interval:
                    summary.min_poll_interval = gap
            summary.poll_times.append(now)
            if summary.terminal_seen_at is not None:
                summary.polls_after_terminal += 1
                flags += (POLL_AFTER_TERMINAL,)
        elif op in (Operation.RESULT, Operation.CONTENT):
            summary.result_fetches += 1
            if phase is not Phase.SUCCEEDED:
                summary.results_before_success += 1
                flags += (RESULT_BEFORE_SUCCESS,)
        elif op is Operation.DOWNLOAD and status == 200:
            summary.downloads += 1
        elif op is Operation.CANCEL:
            summary.cancels += 1
        if (phase is not None and phase.terminal and status < 400
                and summary.terminal_seen_at is None and op is not Operation.DOWNLOAD):
            summary.terminal_seen_at = now
            summary.terminal_phase = str(phase)
        return flags
