"""The one interface that owns every piece of mutable simulation state (WireMock's ``Stores``).

Jobs, the FIFO slot queues, counters (rate-limit windows, scripted responses, polls of poll-driven
jobs), the journal, the simulated clock, the random generator and the server's identity and
signing secret: nothing outside a :class:`SimState` implementation holds simulation state, so a
second backend (``redis.py``) is one new class, and the conformance suite runs against each.

Contract of every implementation:

* **Atomic operations.** Each method is one atomic step as seen by every worker sharing the
  state: :meth:`SimState.create` admits a job to its queue and stores it (create-if-absent),
  :meth:`SimState.cancel` takes a queued job out of its queue and reschedules the jobs behind it,
  :meth:`SimState.passage` pops a scripted response and counts a rate-limit window.
* **Versions.** Every stored job has a version, bumped by every change (a cancel, a reschedule, a
  poll-driven end). :meth:`SimState.cancel` applies only at the version the caller read (compare
  and set) and answers ``None`` on a conflict: read again and decide again.
* **Time is passed in.** Operations take the caller's ``now`` (read once per request from
  :attr:`SimState.clock`); the state never reads a clock behind the caller's back, so a request
  sees one instant, and tests drive everything with a :class:`~wanmock.server.clock.FakeClock`.
* **Queues settle lazily**: reading or changing a queue first plays what happened up to ``now``
  (jobs starting, waiting jobs expiring), in time order, updating the records it moves.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..clock import Clock
from ..faults import Passage, RateLimit, ScriptedFault
from ..journal import Journal, Request
from ..lifecycle import JobRecord, state_at
from ..vocab import Operation, Phase

__all__ = ["Admission", "Census", "Created", "Gate", "Identity", "Page", "Read", "SimState",
           "Stored", "kept_bytes", "listed"]


def kept_bytes(record: JobRecord) -> int:
    """What a job keeps of what was submitted, in bytes (counted against its owner's budget)."""
    request = record.request
    return len(request.params) + 4 * (len(request.prompt) + len(request.negative_prompt))


@dataclass(frozen=True, slots=True)
class Gate:
    """What a provider request asks of the shared state before anything else: a scripted
    response queued for its endpoint, and its count in its key's rate-limit window."""

    provider: str
    operation: Operation
    #: The caller's owner hash (``""``: no usable key; such requests are not rate-limited).
    key: str
    limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """Where a :class:`~wanmock.server.lifecycle.Slotted` job queues, and what the queue needs."""

    queue: str
    ready_at: float
    run_seconds: float
    concurrency: int


@dataclass(frozen=True, slots=True)
class Stored:
    """A job as stored: its record, its version, and its slot-queue position at the time read
    (``None`` unless it waits in a slot queue)."""

    record: JobRecord
    version: int
    slot_position: int | None = None


@dataclass(frozen=True, slots=True)
class Read:
    """A job read together with the request's :class:`~wanmock.server.faults.Passage` (one
    round trip for a shared state)."""

    passage: Passage
    stored: Stored | None


@dataclass(frozen=True, slots=True)
class Created:
    """The passage of a submit and, unless it blocked or the id was taken, the new job."""

    passage: Passage
    stored: Stored | None
    #: The id was taken (draw another); never set when the passage blocked.
    taken: bool = False
    #: Not created: the owner's jobs already keep ``budget`` bytes (see :meth:`SimState.create`).
    over_budget: bool = False


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this simulation state is: the tag in every id it issues, the key that signs artifact
    URLs, and the incarnation (random per in-memory run, kept by a persistent state)."""

    tag: bytes
    secret: bytes
    incarnation: str


@dataclass(frozen=True, slots=True)
class Census:
    """Jobs by provider and phase at one instant, and the queues (for metrics and health)."""

    jobs: Mapping[str, Mapping[Phase, int]]
    #: queue name -> (waiting jobs, busy slots).
    queues: Mapping[str, tuple[int, int]]
    total: int
    #: Jobs accepted since the last reset, by provider (``None``: this state does not count).
    submitted: Mapping[str, int] | None = None
    #: Jobs that reached a terminal phase by now, evicted ones included, by provider and the
    #: first terminal phase reached (``None``: this state does not count them).
    finished: Mapping[str, Mapping[Phase, int]] | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of an owner's jobs, newest first, and how many match in all."""

    stored: tuple[Stored, ...]
    total: int


def listed(record: JobRecord, now: float, *, since: float | None, until: float | None,
           phases: frozenset[Phase] | None, model: str | None) -> bool:
    """Whether a live job matches a list request's filters (the one predicate every state
    applies): submitted within ``[since, until]``, in one of ``phases`` at ``now``, of
    ``model``."""
    created = record.created_at
    if (since is not None and created < since) or (until is not None and created > until):
        return False
    if model is not None and record.request.model != model:
        return False
    return phases is None or state_at(record, now).phase in phases


@runtime_checkable
class SimState(Protocol):
    """All mutable simulation state, behind one seam. See the module docstring for the contract."""

    clock: Clock
    #: This worker's random generator (seeded: reproducible under ``--seed``).
    rng: random.Random
    identity: Identity

    async def passage(self, gate: Gate, now: float) -> Passage:
        """Pop the first scripted response for the gate's endpoint (most specific scope first)
        and count the request in its key's rate window."""
        ...

    async def create(self, record: JobRecord, admission: Admission | None, now: float,
                     gate: Gate | None = None, budget: int | None = None) -> Created:
        """Pass the gate (if given) and, unless it blocks, store a new job (not if the id is
        taken, nor if the owner's live jobs would then keep more than ``budget`` bytes of
        submitted bodies: :func:`kept_bytes`). A slotted job is admitted to its queue first:
        the stored record carries the seq, start and end the queue gave it."""
        ...

    async def read(self, job_id: str, now: float, gate: Gate | None = None) -> Read:
        """Pass the gate (if given) and read the job (its queue settled to ``now``); ``stored``
        is ``None`` if it is unknown or evicted."""
        ...

    async def jobs_of(self, provider: str, owner: str, now: float, *, offset: int, limit: int,
                      since: float | None = None, until: float | None = None,
                      phases: frozenset[Phase] | None = None, model: str | None = None
                      ) -> Page:
        """The owner's live (not evicted) jobs of ``provider`` matching the filters (see
        :func:`listed`), newest first (ties: the later created first), ``limit`` of them from
        ``offset``, and how many match. Work is bounded by the owner's jobs, never all jobs;
        jobs waiting in a slot queue are read as :meth:`read` reads them (settled to ``now``)."""
        ...

    async def waiting(self, queue: str, now: float) -> int:
        """How many jobs wait in a slot queue at ``now`` (0 for an unknown queue)."""
        ...

    async def cancel(self, job_id: str, version: int, now: float, *, queued: bool
                     ) -> Stored | None:
        """Cancel at ``now`` if the job is still at ``version`` (else ``None``). ``queued``: it
        was waiting, so it leaves its queue and will never run; otherwise only the client's view
        changes (a running job keeps its slot until its run would have ended)."""
        ...

    async def count_poll(self, job_id: str, now: float) -> Stored | None:
        """Count a status poll of a :class:`~wanmock.server.lifecycle.PollDriven` job; at its
        N-th poll the job ends now. ``None`` if the job is gone."""
        ...

    async def script(self, faults: Iterable[ScriptedFault], *, provider: str | None,
                     operation: Operation | None) -> int:
        """Queue the next responses of an endpoint; how many are now queued there."""
        ...

    async def scripted(self) -> dict[str, list[str]]:
        """What is still scripted, by ``provider:operation`` (``*`` for any)."""
        ...

    async def preset(self) -> str:
        """The preset switched to at runtime (``""``: none, the configuration as started)."""
        ...

    async def set_preset(self, name: str) -> None:
        """Switch every worker sharing this state to a preset (``""``: back to none)."""
        ...

    async def record(self, request: Request) -> None:
        """Journal one answered request (see :meth:`~wanmock.server.journal.Journal.record`);
        a shared state may write it a moment later, in a batch."""
        ...

    async def journal(self) -> Journal:
        """The journal to read: summaries, tallies and the recent entries."""
        ...

    async def census(self, now: float) -> Census:
        """Jobs by provider and phase, and queue depths, at ``now``; bounded work whatever the
        number of jobs (it runs at every metrics scrape), and the same numbers from every
        worker sharing the state."""
        ...

    async def next_change(self, now: float) -> float | None:
        """The next instant after ``now`` at which an unfinished job changes phase (``None``:
        none will). Finished jobs are left out: a clock that jumps to their expiry would expire
        results a client is about to download."""
        ...

    async def reset(self) -> None:
        """Forget every job, queue, counter, script and journal entry; reseed the generator.
        The clock and the identity stay."""
        ...

    async def close(self) -> None:
        """Release connections (nothing for in-memory state)."""
        ...
