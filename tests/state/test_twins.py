"""The same operations applied to a :class:`MemoryState` and a :class:`RedisState` give the same
views: jobs, versions, queue positions, cancels, poll-driven ends, census."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from wanmock.server.clock import FakeClock
from wanmock.server.engine import Plan
from wanmock.server.faults import RateLimit, ScriptedFault
from wanmock.server.state import Gate, MemoryState
from wanmock.server.state.redis import RedisState
from wanmock.server.vocab import FaultKind, Operation, Phase

from .test_conformance import T0, Jobs

T = TypeVar("T")

#: One of each scheduling mode, slotted ones with and without a queue delay (a later-ready job
#: ahead holds back those behind it: FIFO).
PLANS = st.sampled_from([
    Plan(queue_delay=0.0, run_seconds=10.0),
    Plan(queue_delay=3.0, run_seconds=60.0),
    Plan(queue_delay=0.0, run_seconds=60.0),
    Plan(stuck_in_queue=True),
    Plan(ahead=2, drain=2.0, run_seconds=5.0),
    Plan(end_after_polls=2, queue_delay=1.0),
    Plan(cancel_after=4.0),
])


def machine(url: str) -> type[RuleBasedStateMachine]:
    class SameViews(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.now = T0
            self.memory = MemoryState(FakeClock(T0), seed=1)
            self.redis = RedisState(url, namespace=f"twin{uuid.uuid4().hex[:10]}",
                                    clock=FakeClock(T0), seed=1)
            self.twins = [Jobs(self.memory, concurrency=2), Jobs(self.redis, concurrency=2)]
            self.ids: list[tuple[str, str]] = []

        def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
            return self.loop.run_until_complete(coroutine)

        def both(self, call: Any) -> tuple[Any, Any]:
            memory, shared = (self.run(call(twin)) for twin in self.twins)
            return memory, shared

        @rule(plan=PLANS, owner=st.sampled_from(["a", "b"]),
              retention=st.sampled_from([30.0, 1000.0]))
        def submit(self, plan: Plan, owner: str, retention: float) -> None:
            memory, shared = self.both(lambda jobs: jobs.submit(
                self.now, owner=owner, plan=plan, retention=retention))
            assert memory == shared
            self.ids.append((memory.id, owner))

        @precondition(lambda self: self.ids)
        @rule(pick=st.integers(0, 1000))
        def read(self, pick: int) -> None:
            job_id, _ = self.ids[pick % len(self.ids)]
            memory, shared = self.both(lambda jobs: jobs.state.read(job_id, self.now))
            assert memory == shared

        @precondition(lambda self: self.ids)
        @rule(pick=st.integers(0, 1000))
        def cancel(self, pick: int) -> None:
            job_id, owner = self.ids[pick % len(self.ids)]
            memory, shared = self.both(lambda jobs: jobs.engine.cancel(
                "p", job_id, owner, self.now, allowed=(Phase.QUEUED, Phase.RUNNING)))
            assert memory == shared

        @precondition(lambda self: self.ids)
        @rule(pick=st.integers(0, 1000))
        def poll(self, pick: int) -> None:
            job_id, _ = self.ids[pick % len(self.ids)]
            memory, shared = self.both(lambda jobs: jobs.state.count_poll(job_id, self.now))
            assert memory == shared

        @rule(key=st.sampled_from(["k1", "k2"]), operation=st.sampled_from(list(Operation)),
              scripted=st.sampled_from([None, FaultKind.HTTP_503, FaultKind.PASS]))
        def gate(self, key: str, operation: Operation, scripted: FaultKind | None) -> None:
            if scripted is not None:
                self.both(lambda jobs: jobs.state.script(
                    [ScriptedFault(scripted)], provider="p", operation=operation))
            gate = Gate("p", operation, key, RateLimit(2, 60))
            memory, shared = self.both(lambda jobs: jobs.state.passage(gate, self.now))
            assert memory == shared

        @rule(owner=st.sampled_from(["a", "b"]), offset=st.integers(0, 3),
              limit=st.integers(1, 4),
              phases=st.sampled_from([None, frozenset({Phase.QUEUED}),
                                      frozenset({Phase.RUNNING, Phase.CANCELLED})]))
        def listing(self, owner: str, offset: int, limit: int,
                    phases: frozenset[Phase] | None) -> None:
            memory, shared = self.both(lambda jobs: jobs.state.jobs_of(
                "p", owner, self.now, offset=offset, limit=limit, phases=phases))
            assert memory == shared

        @rule(seconds=st.sampled_from([0.5, 2.0, 5.0, 31.0, 61.0]))
        def advance(self, seconds: float) -> None:
            self.now += seconds

        @rule()
        def census(self) -> None:
            scripted = self.both(lambda jobs: jobs.state.scripted())
            assert scripted[0] == scripted[1]
            memory, shared = self.both(lambda jobs: jobs.state.census(self.now))
            assert memory.jobs == shared.jobs and memory.total == shared.total
            assert memory.submitted == shared.submitted
            assert memory.finished == shared.finished
            assert {q: v for q, v in memory.queues.items() if v != (0, 0)} == {
                q: v for q, v in shared.queues.items() if v != (0, 0)}
            soonest = self.both(lambda jobs: jobs.state.next_change(self.now))
            assert soonest[0] == soonest[1]

        def teardown(self) -> None:
            self.run(self.redis.reset())
            self.run(self.redis.close())
            self.loop.close()

    return SameViews


def test_memory_and_redis_give_the_same_views(redis_url: str) -> None:
    run_state_machine_as_test(machine(redis_url), settings=settings(
        max_examples=150, stateful_step_count=25, deadline=None))
