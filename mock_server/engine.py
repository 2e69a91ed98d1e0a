"""The lifecycle engine shared by every provider: submit, look up, cancel — no HTTP here.

The engine decides a job's fate once, at submit (a :class:`Plan`: queue delay, run time, outcome;
a :data:`~wanmock.server.lifecycle.Schedule`), hands it to the simulation state (which admits it
to its FIFO slot queue), and from then on derives its state from timestamps with
:func:`~wanmock.server.lifecycle.state_at`. Every method takes ``now`` explicitly: the engine
never reads a clock, so it is a function of time, its inputs and the state.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass

from .config import LifecycleConfig, QueueScope
from .errors import BudgetExceeded, JobForbidden, JobNotFound
from .faults import Passage
from .lifecycle import (
    Backlog,
    Failure,
    JobRecord,
    JobRequest,
    JobView,
    PollDriven,
    Schedule,
    Slotted,
    Stuck,
    position_outside_slots,
    state_at,
)
from .state import Admission, Gate, SimState, Stored
from .vocab import FailureKind, Phase

__all__ = ["FAILURE_MESSAGES", "CancelResult", "Engine", "Plan"]

#: Neutral failure messages, modelled on the upstream DashScope texts.
FAILURE_MESSAGES = {
    FailureKind.MODERATION: "Output data may contain inappropriate content.",
    FailureKind.INTERNAL: "An internal error has occurred, please try again later.",
    FailureKind.TIMEOUT: "The generation did not finish in time upstream.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A job's fate, decided at submit time."""

    #: Wait before the job may take a slot (on top of waiting for a free slot).
    queue_delay: float = 0.0
    #: Time from start to the end of the run (``inf``: never ends, stuck running).
    run_seconds: float = 60.0
    failure: Failure | None = None
    #: Never leaves the queue (its position stays what it was at submit).
    stuck_in_queue: bool = False
    #: Waits behind ``ahead`` jobs outside the slot queue, one draining per ``drain`` seconds.
    ahead: int | None = None
    drain: float = 2.0
    #: Ends (as ``failure`` says) at this status poll instead of after ``run_seconds``.
    end_after_polls: int | None = None
    #: Expires this many seconds after submit instead of after the provider's retention.
    expire_after: float | None = None
    #: Sits in the queue and is cancelled provider-side this many seconds after submit.
    cancel_after: float | None = None
    #: Images that fail on their own while the job succeeds (all of them: the job fails).
    failed_images: int = 0
    #: Name of the scenario or preset that produced this plan.
    scenario: str = ""


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What a cancel did: the job's view afterwards and whether this call cancelled it."""

    view: JobView
    cancelled_now: bool
    #: The phase the job was in when the cancel arrived.
    before: Phase


class Engine:
    """The lifecycle of every provider's jobs over a :class:`~wanmock.server.state.SimState`.

    The engine holds no state of its own: plans are drawn from the state's generator, jobs and
    queues live in the state, and every method takes ``now`` (the request's one instant)."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def plan(self, lifecycle: LifecycleConfig) -> Plan:
        """Draw a plan from the lifecycle configuration."""
        rng = self.state.rng
        queue_delay = lifecycle.queue_delay.sample(rng)
        failure = None
        if lifecycle.failure_rate and rng.random() < lifecycle.failure_rate:
            kind = rng.choice(lifecycle.failure_kinds)
            failure = Failure(kind, FAILURE_MESSAGES[kind])
        run_seconds = lifecycle.run_time.sample(rng)
        if failure is not None:
            run_seconds *= rng.uniform(0.1, 1.0)  # failures come part-way through a run
        stuck = bool(lifecycle.stuck_rate) and rng.random() < lifecycle.stuck_rate
        ahead = lifecycle.backlog or None
        return Plan(queue_delay=queue_delay, run_seconds=run_seconds, failure=failure,
                    stuck_in_queue=stuck, ahead=ahead, drain=lifecycle.backlog_drain)

    async def submit(
        self,
        *,
        provider: str,
        owner: str,
        request: JobRequest,
        make_id: Callable[[random.Random, bytes], str],
        retention: float,
        now: float,
        plan: Plan,
        lifecycle: LifecycleConfig,
        gate: Gate | None = None,
        budget: int | None = None,
    ) -> tuple[Passage, JobView | None]:
        """Pass ``gate`` and create a job; ``make_id(rng, tag)`` draws a provider-shaped id.

        The view is ``None`` when the gate blocked (a scripted error, over a rate limit): then
        nothing was created. :class:`~wanmock.server.errors.BudgetExceeded` if the owner's
        jobs already keep ``budget`` bytes."""
        state = self.state
        rng = state.rng
        # the client sent none: draw one, as the providers do
        seed = rng.randrange(2**31) if request.seed is None else request.seed
        failed_images = min(plan.failed_images, request.n)
        failure = plan.failure
        if failed_images == request.n and failure is None:  # no image left: the job fails
            failure = Failure(FailureKind.INTERNAL, FAILURE_MESSAGES[FailureKind.INTERNAL])
        if failure is not None:
            failed_images = 0
        queue = f"{provider}:{owner if lifecycle.queue_scope is QueueScope.ACCOUNT else ''}"
        expires_at = now + (retention if plan.expire_after is None else plan.expire_after)
        admission = None
        cancelled_at = None
        schedule: Schedule
        if plan.stuck_in_queue or plan.cancel_after is not None:
            schedule, start, end = Stuck(await state.waiting(queue, now)), math.inf, math.inf
            if plan.cancel_after is not None:
                cancelled_at = now + plan.cancel_after
        elif plan.end_after_polls is not None:
            schedule = PollDriven(plan.end_after_polls)
            start, end = now + plan.queue_delay, math.inf
        elif plan.ahead is not None:
            schedule = Backlog(plan.ahead, plan.drain)
            start = now + (plan.ahead + 1) * plan.drain
            end = start + plan.run_seconds
        else:  # the queue decides start and end
            schedule, start, end = Slotted(queue, -1), math.inf, math.inf
            admission = Admission(queue, now + plan.queue_delay, plan.run_seconds,
                                  lifecycle.concurrency)
        passed: Passage | None = None
        for _ in range(8):  # a taken id is astronomically rare, but never overwrite
            record = JobRecord(
                id=make_id(rng, state.identity.tag),
                provider=provider,
                owner=owner,
                request=request,
                created_at=now,
                start_at=start,
                end_at=end,
                expires_at=expires_at,
                evict_at=expires_at + lifecycle.evict_after,
                schedule=schedule,
                failure=failure,
                cancelled_at=cancelled_at,
                scenario=plan.scenario,
                seed=seed,
                failed_images=failed_images,
            )
            created = await state.create(record, admission, now, gate, budget)
            if created.stored is not None:
                return passed or created.passage, self.view(created.stored, now)
            if created.passage.blocks:
                return created.passage, None
            if created.over_budget:
                raise BudgetExceeded(
                    f"this API key's jobs already keep {budget} bytes of submitted bodies "
                    "(limits.key_bytes); wait for old jobs to expire, or reset the fake",
                    retry_after=60.0)
            if gate is not None:  # passed once: the retry with another id must not count again
                passed, gate = created.passage, None
                continue
        raise RuntimeError("could not draw an unused job id in 8 tries")  # pragma: no cover

    async def find(self, provider: str, job_id: str, owner: str, now: float) -> Stored:
        """The stored job, if ``owner`` may see it."""
        stored = (await self.state.read(job_id, now)).stored
        return self.visible(stored, provider, job_id, owner)

    @staticmethod
    def visible(stored: Stored | None, provider: str, job_id: str, owner: str) -> Stored:
        """``stored`` if it is this provider's job and ``owner``'s, else the domain error."""
        if stored is None or stored.record.provider != provider:
            raise JobNotFound(job_id)
        if stored.record.owner != owner:
            raise JobForbidden(job_id)
        return stored

    async def lookup(self, provider: str, job_id: str, owner: str, now: float) -> JobView:
        """The job's view at ``now``, if ``owner`` may see it."""
        return self.view(await self.find(provider, job_id, owner, now), now)

    @staticmethod
    def view(stored: Stored, now: float) -> JobView:
        """``state_at`` plus the queue position (from the slot queue, or the schedule)."""
        record = stored.record
        position = (stored.slot_position if isinstance(record.schedule, Slotted)
                    else position_outside_slots(record, now))
        return state_at(record, now, queue_position=position)

    async def note_poll(self, stored: Stored, now: float) -> Stored:
        """Count a status poll; a job scripted to end at the N-th poll ends now."""
        if not isinstance(stored.record.schedule, PollDriven):
            return stored
        counted = await self.state.count_poll(stored.record.id, now)
        return counted if counted is not None else stored

    async def cancel(
        self,
        provider: str,
        job_id: str,
        owner: str,
        now: float,
        *,
        allowed: Collection[Phase] = (Phase.QUEUED,),
    ) -> CancelResult:
        """Cancel the job if its phase is in ``allowed``; otherwise leave it as it is."""
        for _ in range(16):  # another worker changed it between read and write: read again
            stored = await self.find(provider, job_id, owner, now)
            view = self.view(stored, now)
            if view.phase not in allowed:
                return CancelResult(view, False, view.phase)
            done = await self.state.cancel(job_id, stored.version, now,
                                           queued=view.phase is Phase.QUEUED)
            if done is not None:
                return CancelResult(self.view(done, now), True, view.phase)
        raise RuntimeError(f"job {job_id} kept changing while being cancelled")  # pragma: no cover
