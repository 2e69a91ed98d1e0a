"""The pure core: a job's state is a function of its record and the time.

A :class:`JobRecord` holds only timestamps and decisions made at submit time (when it will start,
how long it runs, how it ends). :func:`state_at` derives the :class:`JobView` for any instant —
no I/O, no background task, no ``async``: a million idle jobs cost only their memory.

>>> req = JobRequest(model="m", prompt="a cat", width=1024, height=1024, n=1, seed=7)
>>> job = JobRecord(id="j1", provider="p", owner="k", request=req, created_at=0.0,
...                 start_at=10.0, end_at=70.0, expires_at=1000.0, evict_at=2000.0,
...                 schedule=Slotted("q", 0))
>>> [state_at(job, t).phase.value for t in (0, 10, 69.9, 70, 1000)]
['queued', 'running', 'running', 'succeeded', 'expired']

How a job waits is a :data:`Schedule`, a tagged value rather than sentinel numbers:
:class:`Slotted` (the FIFO slot queue decides its start), :class:`Backlog` (behind other users'
jobs outside the slots), :class:`Stuck` (never leaves the queue) and :class:`PollDriven` (ends at
the N-th status poll). Whether a job is queued is decided once, by :func:`state_at`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .vocab import FailureKind, Phase

__all__ = [
    "Backlog",
    "Failure",
    "JobRecord",
    "JobRequest",
    "JobView",
    "PollDriven",
    "Schedule",
    "Slotted",
    "Stuck",
    "next_change",
    "phase_at",
    "phase_changes",
    "position_outside_slots",
    "state_at",
]

NEVER = math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRequest:
    """What a client asked for, in provider-neutral terms (parsed and defaulted by a dialect)."""

    model: str
    prompt: str
    width: int
    height: int
    n: int = 1
    #: ``None``: the client sent none (the engine draws one: :attr:`JobRecord.seed`).
    seed: int | None = None
    negative_prompt: str = ""
    prompt_extend: bool = False
    #: The body as the client sent it (after defaults), as compact JSON bytes without the
    #: prompt (kept once, above, and put back at ``prompt_path``): nothing submitted is lost;
    #: see :attr:`submitted`.
    params: bytes = b"{}"
    prompt_path: tuple[str, ...] = ("prompt",)

    @property
    def submitted(self) -> dict[str, object]:
        """The whole submitted body, defaults applied."""
        body: dict[str, object] = json.loads(self.params)
        where = body
        for name in self.prompt_path[:-1]:
            where = where.setdefault(name, {})  # type: ignore[assignment]
        where[self.prompt_path[-1]] = self.prompt
        return body


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a job failed: a neutral kind, rendered by each dialect in its own words."""

    kind: FailureKind
    message: str


@dataclass(frozen=True, slots=True)
class Slotted:
    """Waits in a FIFO queue with a few concurrent slots; the queue sets its start and end."""

    #: Which queue (per provider and API key, or per provider).
    queue: str
    #: Submission order within that queue.
    seq: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """Waits behind ``ahead`` jobs outside the slot queue, one draining every ``drain`` s."""

    ahead: int
    drain: float


@dataclass(frozen=True, slots=True)
class Stuck:
    """Never leaves the queue; ``ahead`` jobs were waiting when it arrived."""

    ahead: int


@dataclass(frozen=True, slots=True)
class PollDriven:
    """Runs after its queue delay and ends (as its failure says) at the ``polls``-th poll."""

    polls: int


#: How a job waits for and holds a slot.
Schedule = Slotted | Backlog | Stuck | PollDriven


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    """Everything decided about a job. Immutable: changes produce a new record."""

    id: str
    provider: str
    #: Opaque owner token (a hash of the API key); a job is visible to its owner only.
    owner: str
    request: JobRequest
    created_at: float
    #: When the job takes a slot (``inf``: never, e.g. stuck in queue).
    start_at: float
    #: When it stops running, successfully or not (``inf``: never).
    end_at: float
    #: When it turns ``expired`` and its artifacts stop downloading.
    expires_at: float
    #: When the store may forget it entirely (then: not found).
    evict_at: float
    schedule: Schedule
    #: Set when the job will fail at ``end_at`` instead of succeeding.
    failure: Failure | None = None
    #: When it was (or will be, for a provider-side cancel) cancelled.
    cancelled_at: float | None = None
    #: Name of the scenario that shaped this job (for the journal and debugging).
    scenario: str = ""
    #: The generation seed: the client's, or one the engine drew (as the providers do).
    seed: int = 0
    #: Images of a succeeded job that failed on their own (a partial failure: the last ones).
    failed_images: int = 0

    @property
    def images(self) -> int:
        """How many images a success delivers (``n`` less the partially failed ones)."""
        return self.request.n - self.failed_images


@dataclass(frozen=True, slots=True, kw_only=True)
class JobView:
    """A job as seen at one instant."""

    record: JobRecord
    phase: Phase
    at: float
    #: How many jobs are ahead in the queue (0 = next to start); only while queued.
    queue_position: int | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def started_at(self) -> float | None:
        """When it began running, if it has."""
        start = self.record.start_at
        return start if start <= self.at and self.phase is not Phase.QUEUED else None

    @property
    def finished_at(self) -> float | None:
        """When it reached a terminal phase, if it has (expiry aside)."""
        if self.phase is Phase.CANCELLED:
            return self.record.cancelled_at
        if self.phase in (Phase.SUCCEEDED, Phase.FAILED):
            return self.record.end_at
        if self.phase is Phase.EXPIRED:
            return _end_before_expiry(self.record)
        return None

    @property
    def outcome(self) -> Phase | None:
        """The terminal phase the job reached before any expiry (``None`` if it never ended)."""
        if self.phase is Phase.EXPIRED:
            record = self.record
            if record.cancelled_at is not None and record.cancelled_at < record.expires_at:
                return Phase.CANCELLED
            if record.end_at <= record.expires_at:
                return Phase.FAILED if record.failure else Phase.SUCCEEDED
            return None
        return self.phase if self.phase.terminal else None

    @property
    def has_result(self) -> bool:
        """True iff the job succeeded and its artifacts are still available."""
        return self.phase is Phase.SUCCEEDED


def state_at(job: JobRecord, now: float, *, queue_position: int | None = None) -> JobView:
    """The job's view at ``now``; ``queue_position`` (supplied by the slot queue, or by
    :func:`position_outside_slots`) is kept only while the job is queued."""
    phase = phase_at(job, now)
    return JobView(
        record=job,
        phase=phase,
        at=now,
        queue_position=queue_position if phase is Phase.QUEUED else None,
    )


def phase_at(job: JobRecord, now: float) -> Phase:
    """The job's phase at ``now`` (what :func:`state_at` shows, without building a view)."""
    if now >= job.expires_at:
        return Phase.EXPIRED
    if job.cancelled_at is not None and now >= job.cancelled_at:
        return Phase.CANCELLED
    if now < job.start_at:
        return Phase.QUEUED
    if now < job.end_at:
        return Phase.RUNNING
    return Phase.FAILED if job.failure is not None else Phase.SUCCEEDED


def position_outside_slots(job: JobRecord, now: float) -> int | None:
    """The queue position of a queued job that is not in a slot queue (``None`` for those that
    are: the queue knows). A backlog drains one job per ``drain`` seconds; a stuck job keeps its
    place; a poll-driven job is next.

    >>> req = JobRequest(model="m", prompt="a cat", width=1024, height=1024)
    >>> job = JobRecord(id="j1", provider="p", owner="k", request=req, created_at=0.0,
    ...                 start_at=8.0, end_at=68.0, expires_at=1000.0, evict_at=2000.0,
    ...                 schedule=Backlog(ahead=3, drain=2.0))
    >>> [position_outside_slots(job, t) for t in (0, 1.9, 2, 7.9)]
    [3, 3, 2, 0]
    """
    schedule = job.schedule
    if isinstance(schedule, Backlog):
        return max(0, schedule.ahead - int((now - job.created_at) // schedule.drain))
    if isinstance(schedule, Stuck):
        return schedule.ahead
    if isinstance(schedule, PollDriven):
        return 0
    return None


def next_change(job: JobRecord, now: float) -> float:
    """The earliest instant after ``now`` at which :func:`state_at` may give another phase.

    Until then the phase (and everything derived from the record alone) stays what it is at
    ``now``; a queue position may still move. ``inf`` once nothing more can happen.

    >>> req = JobRequest(model="m", prompt="a cat", width=1024, height=1024)
    >>> job = JobRecord(id="j1", provider="p", owner="k", request=req, created_at=0.0,
    ...                 start_at=10.0, end_at=70.0, expires_at=1000.0, evict_at=2000.0,
    ...                 schedule=Slotted("q", 0))
    >>> [next_change(job, t) for t in (0, 10, 70, 1000)]
    [10.0, 70.0, 1000.0, inf]
    """
    cancelled = job.cancelled_at if job.cancelled_at is not None else NEVER
    return min((t for t in (job.start_at, job.end_at, cancelled, job.expires_at) if t > now),
               default=NEVER)


def phase_changes(job: JobRecord) -> list[tuple[float, Phase]]:
    """Every phase the job goes through, with the instant it enters it (the first at ``-inf``):
    :func:`phase_at` evaluated once between each pair of the record's own boundaries, so the two
    never disagree. A census counts jobs by phase from these in O(log n) (``state/census.py``).

    >>> req = JobRequest(model="m", prompt="a cat", width=1024, height=1024)
    >>> job = JobRecord(id="j1", provider="p", owner="k", request=req, created_at=0.0,
    ...                 start_at=10.0, end_at=70.0, expires_at=1000.0, evict_at=2000.0,
    ...                 schedule=Slotted("q", 0))
    >>> [(t, p.value) for t, p in phase_changes(job)]
    [(-inf, 'queued'), (10.0, 'running'), (70.0, 'succeeded'), (1000.0, 'expired')]
    """
    cancelled = job.cancelled_at if job.cancelled_at is not None else NEVER
    bounds = sorted({t for t in (job.start_at, job.end_at, cancelled, job.expires_at)
                     if t != NEVER})
    changes = [(-NEVER, phase_at(job, -NEVER))]
    last = changes[0][1]
    for t in bounds:
        phase = phase_at(job, t)
        if phase is not last:
            changes.append((t, phase))
            last = phase
    return changes


def _end_before_expiry(job: JobRecord) -> float | None:
    if job.cancelled_at is not None and job.cancelled_at < job.expires_at:
        return job.cancelled_at
    return job.end_at if job.end_at <= job.expires_at else None
