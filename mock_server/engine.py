"""The lifecycle engine shared by every provider: submit, look up, cancel — no HTTP here.

The engine decides a job's fate once, at submit (a :class:`Plan`: queue delay, run time, outcome),
places it in a :class:`~wanmock.server.scheduler.FifoQueue`, and from then on derives its state from
timestamps with :func:`~wanmock.server.lifecycle.state_at`. Every method takes ``now`` explicitly:
the engine never reads a clock, so it is a function of time and its inputs.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass

from .config import LifecycleConfig, QueueScope
from .errors import JobForbidden, JobNotFound
from .lifecycle import Failure, JobRecord, JobRequest, JobView, state_at
from .scheduler import FifoQueue, Slot
from .store import JobStore, MemoryStore
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
    """Jobs of every provider, their queues and their random fates (seeded)."""

    def __init__(
        self, lifecycle: LifecycleConfig, *, seed: int, store: JobStore | None = None
    ) -> None:
        self.lifecycle = lifecycle
        self.seed = seed
        self.rng = random.Random(seed)
        self.store: JobStore = store if store is not None else MemoryStore(
            max_jobs=lifecycle.max_jobs
        )
        self._queues: dict[tuple[str, str], FifoQueue] = {}
        self._submits = 0

    def reset(self) -> None:
        """Forget every job and queue and reseed: as if freshly created."""
        self.store.clear()
        self._queues.clear()
        self._submits = 0
        self.rng = random.Random(self.seed)

    def default_plan(self) -> Plan:
        """Draw a plan from the lifecycle configuration."""
        cfg = self.lifecycle
        queue_delay = cfg.queue_delay.sample(self.rng)
        failure = None
        if cfg.failure_rate and self.rng.random() < cfg.failure_rate:
            kind = self.rng.choice(cfg.failure_kinds)
            failure = Failure(kind, FAILURE_MESSAGES[kind])
        run_seconds = cfg.run_time.sample(self.rng)
        if failure is not None:
            run_seconds *= self.rng.uniform(0.1, 1.0)  # failures come part-way through a run
        stuck = bool(cfg.stuck_rate) and self.rng.random() < cfg.stuck_rate
        ahead = cfg.backlog or None
        return Plan(queue_delay=queue_delay, run_seconds=run_seconds, failure=failure,
                    stuck_in_queue=stuck, ahead=ahead, drain=cfg.backlog_drain)

    def submit(
        self,
        *,
        provider: str,
        owner: str,
        request: JobRequest,
        make_id: Callable[[random.Random], str],
        retention: float,
        now: float,
        plan: Plan | None = None,
    ) -> JobView:
        """Create a job; ``make_id`` draws a provider-shaped id from the engine's RNG."""
        self.store.evict(now)
        self._submits += 1
        if self._submits % 1024 == 0:  # forget the queues of keys gone quiet
            self._queues = {k: q for k, q in self._queues.items() if not q.idle(now)}
        plan = plan or self.default_plan()
        # the client sent none: draw one, as the providers do
        seed = self.rng.randrange(2**31) if request.seed is None else request.seed
        job_id = make_id(self.rng)
        while self.store.get(job_id) is not None:  # astronomically rare, but never overwrite
            job_id = make_id(self.rng)
        queue = self._queue(provider, owner)
        expires_at = now + (retention if plan.expire_after is None else plan.expire_after)
        seq, ahead, drain, cancelled_at = -1, plan.ahead, plan.drain, None
        if plan.stuck_in_queue or plan.cancel_after is not None:
            start = end = math.inf
            ahead, drain = queue.position(2**62, now=now), math.inf  # all waiting are ahead
            if plan.cancel_after is not None:
                cancelled_at = now + plan.cancel_after
        elif plan.end_after_polls is not None:
            start, end, ahead = now + plan.queue_delay, math.inf, None
        elif ahead is not None:
            start = now + (ahead + 1) * drain
            end = start + plan.run_seconds
        else:
            seq, start, end = queue.admit(
                job_id, ready_at=now + plan.queue_delay, run_seconds=plan.run_seconds, now=now
            )
        record = JobRecord(
            id=job_id,
            provider=provider,
            owner=owner,
            request=request,
            created_at=now,
            start_at=start,
            end_at=end,
            expires_at=expires_at,
            evict_at=expires_at + self.lifecycle.evict_after,
            seq=seq,
            failure=plan.failure,
            cancelled_at=cancelled_at,
            ahead=ahead,
            drain=drain,
            end_after_polls=plan.end_after_polls,
            scenario=plan.scenario,
            seed=seed,
        )
        self.store.put(record)
        return self.view(record, now)

    def lookup(self, provider: str, job_id: str, owner: str, now: float) -> JobView:
        """The job's view at ``now``, if ``owner`` may see it."""
        record = self.store.get(job_id)
        if record is None or record.provider != provider:
            raise JobNotFound(job_id)
        if record.owner != owner:
            raise JobForbidden(job_id)
        return self.view(record, now)

    def view(self, record: JobRecord, now: float) -> JobView:
        """``state_at`` plus the queue position the scheduler knows."""
        return state_at(record, now, queue_position=self.position(record, now))

    def position(self, record: JobRecord, now: float) -> int | None:
        """How many jobs are ahead of this one at ``now``; ``None`` unless it is queued."""
        if now >= record.start_at or now >= record.expires_at or record.cancelled_at is not None:
            return None  # not queued (or about to say so): no position
        if record.ahead is not None:
            elapsed = now - record.created_at
            drained = 0 if math.isinf(record.drain) else int(elapsed // record.drain)
            return max(0, record.ahead - drained)
        return self._queue(record.provider, record.owner).position(record.seq, now=now)

    def note_poll(self, view: JobView) -> JobView:
        """Count a status poll; a job scripted to end at the N-th poll ends now."""
        record = view.record
        if record.end_after_polls is None or view.phase.terminal:
            return view
        polls = record.polls_seen + 1
        now = view.at
        if polls >= record.end_after_polls:
            record = dataclasses.replace(
                record, polls_seen=polls, start_at=min(record.start_at, now), end_at=now
            )
        else:
            record = dataclasses.replace(record, polls_seen=polls)
        self.store.put(record)
        return self.view(record, now)

    def cancel(
        self,
        provider: str,
        job_id: str,
        owner: str,
        now: float,
        *,
        allowed: Collection[Phase] = (Phase.QUEUED,),
    ) -> CancelResult:
        """Cancel the job if its phase is in ``allowed``; otherwise leave it as it is."""
        view = self.lookup(provider, job_id, owner, now)
        if view.phase not in allowed:
            return CancelResult(view, False, view.phase)
        record = view.record
        if view.phase is Phase.QUEUED:
            record = dataclasses.replace(record, cancelled_at=now, start_at=math.inf,
                                         end_at=math.inf)
            if record.seq >= 0:
                self._reschedule(self._queue(provider, owner).cancel(record.seq, now=now))
        else:
            # A running job keeps its slot until its run would have ended: the upstream call
            # goes on (TheRouter's docs say so of disconnects) — only the client's view changes.
            record = dataclasses.replace(record, cancelled_at=now)
        self.store.put(record)
        return CancelResult(self.view(record, now), True, view.phase)

    def _reschedule(self, changed: Collection[Slot]) -> None:
        for slot in changed:
            record = self.store.get(slot.job_id)
            if record is not None:
                self.store.put(dataclasses.replace(
                    record, start_at=slot.start, end_at=slot.end,
                ))

    @property
    def queue_count(self) -> int:
        """How many per-key (or per-provider) queues are held."""
        return len(self._queues)

    def _queue(self, provider: str, owner: str) -> FifoQueue:
        key = (provider, owner if self.lifecycle.queue_scope is QueueScope.ACCOUNT else "")
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = FifoQueue(self.lifecycle.concurrency)
        return queue
