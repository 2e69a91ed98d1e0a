"""Invariants of the simulation core over generated histories (a Hypothesis state machine)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
)

from tests.support import now
from wanmock.server.clock import FakeClock
from wanmock.server.config import LifecycleConfig, QueueScope
from wanmock.server.distributions import Fixed, Uniform
from wanmock.server.engine import Engine, Plan
from wanmock.server.errors import JobNotFound
from wanmock.server.lifecycle import JobRequest, Slotted
from wanmock.server.scenarios import apply_scenario
from wanmock.server.state import MemoryState
from wanmock.server.vocab import Phase

REQUEST = JobRequest(model="m", prompt="p", width=512, height=512)
RETENTION = 5_000.0
SCENARIOS = ["", "fail", "stuck", "queue-3", "expire-after-50s", "cancel-after-20s",
             "fail-after-2-polls"]


class Lifecycle(RuleBasedStateMachine):
    """Submit, poll, cancel and let time pass; the engine must keep its promises."""

    concurrency = 2
    scope = QueueScope.ACCOUNT
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.lifecycle = LifecycleConfig(
            run_time=Uniform(10, 200), queue_delay=Uniform(0, 5), concurrency=self.concurrency,
            queue_scope=self.scope, failure_rate=0.3, evict_after=10_000.0)
        self.state = MemoryState(FakeClock(), seed=7)
        self.engine = Engine(self.state)
        self.now = 0.0
        self.ids: list[tuple[str, str]] = []
        self.last: dict[str, Phase] = {}
        self.positions: dict[str, int] = {}

    @rule(target=jobs, owner=st.sampled_from(["a", "b"]), scenario=st.sampled_from(SCENARIOS))
    def submit(self, owner: str, scenario: str) -> tuple[str, str]:
        plan = self.engine.plan(self.lifecycle)
        if scenario:
            plan = apply_scenario(plan, scenario, backlog_drain=2.0)
        _, view = now(self.engine.submit(
            provider="p", owner=owner, request=REQUEST, retention=RETENTION, now=self.now,
            plan=plan, lifecycle=self.lifecycle, make_id=lambda rng, tag: f"j{rng.random()}"))
        assert view is not None
        self.ids.append((view.id, owner))
        return view.id, owner

    @rule(job=jobs)
    def poll(self, job: tuple[str, str]) -> None:
        stored = now(self.engine.find("p", *job, self.now))
        now(self.engine.note_poll(stored, self.now))

    @rule(job=jobs)
    def cancel(self, job: tuple[str, str]) -> None:
        before = now(self.engine.lookup("p", *job, self.now)).phase
        result = now(self.engine.cancel("p", *job, self.now))
        assert result.cancelled_now == (before is Phase.QUEUED)
        if result.cancelled_now:
            assert result.view.phase is Phase.CANCELLED

    @rule(seconds=st.floats(0, 400))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def status_never_goes_backwards_and_terminal_states_absorb(self) -> None:
        for job_id, owner in self.ids:
            phase = now(self.engine.lookup("p", job_id, owner, self.now)).phase
            before = self.last.get(job_id)
            if before is not None:
                assert phase.rank >= before.rank, f"{job_id}: {before} -> {phase}"
                if before.terminal and phase is not Phase.EXPIRED:
                    assert phase is before, f"terminal {before} turned into {phase}"
            self.last[job_id] = phase

    @invariant()
    def result_exists_iff_succeeded_and_expiry_is_exact(self) -> None:
        for job_id, owner in self.ids:
            view = now(self.engine.lookup("p", job_id, owner, self.now))
            assert view.has_result == (view.phase is Phase.SUCCEEDED)
            assert (view.phase is Phase.EXPIRED) == (self.now >= view.record.expires_at)
            lifetime = view.record.expires_at - view.record.created_at
            assert min(abs(lifetime - RETENTION), abs(lifetime - 50.0)) < 1e-6

    @invariant()
    def queue_positions_are_distinct_per_queue_and_shrink(self) -> None:
        by_queue: dict[str, list[int]] = {}
        for job_id, owner in self.ids:
            view = now(self.engine.lookup("p", job_id, owner, self.now))
            schedule = view.record.schedule
            if view.phase is Phase.QUEUED:
                assert view.queue_position is not None, job_id
                if isinstance(schedule, Slotted):
                    by_queue.setdefault(schedule.queue, []).append(view.queue_position)
                    if job_id in self.positions:
                        assert view.queue_position <= self.positions[job_id]
                    self.positions[job_id] = view.queue_position
            else:
                assert view.queue_position is None
        for queue, positions in by_queue.items():
            assert len(positions) == len(set(positions)), (queue, positions)


class SharedQueue(Lifecycle):
    concurrency = 1
    scope = QueueScope.PROVIDER


class ThreeSlots(Lifecycle):
    concurrency = 3


settings_ = settings(max_examples=30, stateful_step_count=30, deadline=None)
TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings_
TestSharedQueue = SharedQueue.TestCase
TestSharedQueue.settings = settings_
TestThreeSlots = ThreeSlots.TestCase
TestThreeSlots.settings = settings_


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_evicted_jobs_are_gone_and_the_store_stays_bounded(gaps):  # type: ignore[no-untyped-def]
    config = LifecycleConfig(run_time=Fixed(1), queue_delay=Fixed(0), evict_after=100.0)
    state = MemoryState(FakeClock(), seed=1)
    engine = Engine(state)
    at, ids = 0.0, []
    for gap in gaps:
        at += gap
        _, view = now(engine.submit(provider="p", owner="o", request=REQUEST, retention=500.0,
                                    now=at, make_id=lambda rng, tag: f"j{rng.random()}",
                                    plan=Plan(run_seconds=1), lifecycle=config))
        assert view is not None
        ids.append((view.id, view.record.created_at))
    for job_id, created in ids:
        if at >= created + 600.0:
            try:
                now(engine.lookup("p", job_id, "o", at))
            except JobNotFound:
                continue
            raise AssertionError("a job past its eviction time is still answered")
    assert len(state) <= len(gaps)
