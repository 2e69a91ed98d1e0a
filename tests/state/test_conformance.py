"""One conformance suite, run against every :class:`SimState` backend (memory and a real Redis).

Every expectation is a concrete value: a backend that drifts from the contract fails here, by
name, whichever one it is.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from wanmock.server.clock import FakeClock
from wanmock.server.config import LifecycleConfig
from wanmock.server.distributions import Fixed
from wanmock.server.engine import Engine, Plan
from wanmock.server.faults import RateLimit, ScriptedFault
from wanmock.server.journal import Request
from wanmock.server.lifecycle import JobRecord, JobRequest, JobView, Slotted
from wanmock.server.state import Gate, MemoryState, SimState
from wanmock.server.state.base import Admission
from wanmock.server.state.redis import RedisState
from wanmock.server.vocab import FaultKind, Operation, Phase

pytestmark = pytest.mark.anyio

T0 = 1_000.0
REQUEST = JobRequest(model="m", prompt="a cat", width=512, height=512, seed=7)
Make = Callable[..., SimState]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Make]:
    """``make(max_jobs=...)``: a fresh state of the parametrized backend on a fake clock."""
    made: list[SimState] = []

    def factory(**options: Any) -> SimState:
        clock = options.pop("clock", None) or FakeClock(T0)
        if request.param == "memory":
            state: SimState = MemoryState(clock, seed=5, **options)
        else:
            url = request.getfixturevalue("redis_url")
            state = RedisState(url, namespace=namespace + str(len(made)), clock=clock, seed=5,
                               **options)
        made.append(state)
        return state

    yield factory
    for state in made:
        await state.close()


class Jobs:
    """The engine over a state, with ids and plans the test chooses (no draws)."""

    def __init__(self, state: SimState, **lifecycle: Any) -> None:
        self.state = state
        self.engine = Engine(state)
        self.lifecycle = LifecycleConfig(**{"run_time": Fixed(60), "queue_delay": Fixed(0),
                                            "concurrency": 1, **lifecycle})
        self.count = 0

    async def submit(self, now: float, *, owner: str = "o", plan: Plan | None = None,
                     gate: Gate | None = None, budget: int | None = None,
                     retention: float = 1000.0) -> JobView | None:
        self.count += 1
        name = f"job{self.count}"
        _, view = await self.engine.submit(
            provider="p", owner=owner, request=REQUEST, make_id=lambda rng, tag: name,
            retention=retention, now=now, plan=plan or Plan(run_seconds=60.0),
            lifecycle=self.lifecycle, gate=gate, budget=budget)
        return view

    async def view(self, job_id: str, now: float, owner: str = "o") -> JobView:
        return await self.engine.lookup("p", job_id, owner, now)


def _record(job_id: str, *, start: float = math.inf, owner: str = "o") -> JobRecord:
    return JobRecord(id=job_id, provider="p", owner=owner, request=REQUEST, created_at=T0,
                     start_at=start, end_at=start + 60, expires_at=T0 + 1000,
                     evict_at=T0 + 2000, schedule=Slotted("q", -1))


async def test_create_then_read_gives_the_record_at_version_0(make: Make) -> None:
    state = make()
    jobs = Jobs(state)
    view = await jobs.submit(T0)
    assert view is not None and view.phase is Phase.RUNNING
    read = await state.read(view.id, T0 + 1)
    assert read.stored is not None and read.stored.version == 0
    assert read.stored.record == view.record
    assert (await state.read("nope", T0)).stored is None


async def test_create_is_create_if_absent(make: Make) -> None:
    state = make()
    first = await state.create(_record("same", start=T0), None, T0)
    again = await state.create(_record("same", start=T0 + 5), None, T0)
    assert first.stored is not None and again.taken and again.stored is None
    read = (await state.read("same", T0)).stored
    assert read is not None and read.record.start_at == T0


async def test_fifo_slots_start_in_order_and_positions_shrink(make: Make) -> None:
    jobs = Jobs(make(), concurrency=2)
    views = [await jobs.submit(T0) for _ in range(5)]
    assert [v.record.start_at - T0 for v in views if v] == [0, 0, 60, 60, 120]
    assert [v.queue_position for v in views if v] == [None, None, 0, 1, 2]
    later = [await jobs.view(f"job{i}", T0 + 61) for i in range(1, 6)]
    assert [v.phase for v in later] == [Phase.SUCCEEDED] * 2 + [Phase.RUNNING] * 2 + [
        Phase.QUEUED]
    assert later[4].queue_position == 0


async def test_a_job_ready_later_holds_back_those_behind_it(make: Make) -> None:
    jobs = Jobs(make(), concurrency=2)
    late = await jobs.submit(T0, plan=Plan(queue_delay=3.0, run_seconds=10.0))
    behind = await jobs.submit(T0, plan=Plan(queue_delay=0.0, run_seconds=10.0))
    assert late is not None and behind is not None
    assert (late.record.start_at, behind.record.start_at) == (T0 + 3, T0 + 3)  # FIFO
    assert (late.queue_position, behind.queue_position) == (0, 1)


async def test_cancel_of_a_queued_job_reschedules_those_behind_and_checks_the_version(
        make: Make) -> None:
    state = make()
    jobs = Jobs(state)
    for _ in range(3):
        await jobs.submit(T0)
    stored = (await state.read("job2", T0 + 10)).stored
    assert stored is not None and stored.slot_position == 0
    assert await state.cancel("job2", stored.version + 1, T0 + 10, queued=True) is None
    done = await state.cancel("job2", stored.version, T0 + 10, queued=True)
    assert done is not None and done.version == stored.version + 1
    assert done.record.cancelled_at == T0 + 10 and math.isinf(done.record.start_at)
    behind = (await state.read("job3", T0 + 10)).stored
    assert behind is not None and behind.record.start_at == T0 + 60 and behind.version == 1
    assert behind.slot_position == 0
    assert await state.cancel("job2", stored.version, T0 + 11, queued=True) is None


async def test_cancel_of_a_running_job_changes_only_the_clients_view(make: Make) -> None:
    state = make()
    jobs = Jobs(state)
    await jobs.submit(T0)
    await jobs.submit(T0)
    result = await jobs.engine.cancel("p", "job1", "o", T0 + 5,
                                      allowed=(Phase.QUEUED, Phase.RUNNING))
    assert result.cancelled_now and result.view.phase is Phase.CANCELLED
    assert result.view.record.end_at == T0 + 60
    assert (await jobs.view("job2", T0 + 5)).record.start_at == T0 + 60


async def test_a_job_expiring_while_queued_leaves_and_those_behind_move_up(make: Make) -> None:
    state = make()
    jobs = Jobs(state)
    await jobs.submit(T0)
    await jobs.submit(T0, retention=30)  # would start at +60, expires at +30
    await jobs.submit(T0)
    view = await jobs.view("job3", T0 + 40)
    assert view.phase is Phase.QUEUED and view.queue_position == 0
    assert view.record.start_at == T0 + 60
    assert (await jobs.view("job2", T0 + 40)).phase is Phase.EXPIRED
    assert await state.waiting("p:o", T0 + 40) == 1


async def test_every_scheduling_mode(make: Make) -> None:
    state = make()
    jobs = Jobs(state)
    await jobs.submit(T0)
    await jobs.submit(T0)
    stuck = await jobs.submit(T0, plan=Plan(stuck_in_queue=True))
    backlog = await jobs.submit(T0, plan=Plan(ahead=3, drain=2.0, run_seconds=10))
    polls = await jobs.submit(T0, plan=Plan(end_after_polls=2, queue_delay=1))
    provider_cancel = await jobs.submit(T0, plan=Plan(cancel_after=5))
    assert stuck is not None and stuck.queue_position == 1  # job2 waits ahead of it
    assert backlog is not None and backlog.queue_position == 3
    assert (await jobs.view(backlog.id, T0 + 4)).queue_position == 1
    assert (await jobs.view(backlog.id, T0 + 9)).phase is Phase.RUNNING
    assert polls is not None and polls.queue_position == 0
    assert provider_cancel is not None
    assert (await jobs.view(provider_cancel.id, T0 + 5)).phase is Phase.CANCELLED
    assert (await jobs.view(stuck.id, T0 + 10_000 - 9_100)).phase is Phase.QUEUED
    first = await state.count_poll(polls.id, T0 + 2)
    assert first is not None and first.version == 0 and math.isinf(first.record.end_at)
    second = await state.count_poll(polls.id, T0 + 3)
    assert second is not None and second.version == 1 and second.record.end_at == T0 + 3
    assert (await jobs.view(polls.id, T0 + 3)).phase is Phase.SUCCEEDED
    third = await state.count_poll(polls.id, T0 + 4)
    assert third is not None and third.version == 1  # ended: polls no longer count
    assert await state.count_poll("gone", T0) is None


async def test_evicted_after_evict_at_and_their_bytes_freed(make: Make) -> None:
    state = make()
    jobs = Jobs(state, evict_after=100.0)
    budget = 3 * (len(REQUEST.params) + 4 * len(REQUEST.prompt))
    for _ in range(3):
        assert await jobs.submit(T0, budget=budget, retention=10) is not None
    assert (await state.create(_record("x"), None, T0 + 1, budget=budget)).over_budget
    assert (await state.read("job1", T0 + 109)).stored is not None  # due but not yet evicted
    later = await jobs.submit(T0 + 110, budget=budget)
    assert later is not None
    assert (await state.read("job1", T0 + 110)).stored is None
    census = await state.census(T0 + 110)
    assert census.total == 1
    # the evicted jobs expired (at +10, before their run ended): they still count as finished
    assert census.finished == {"p": {Phase.EXPIRED: 3}} and census.submitted == {"p": 4}


async def test_the_oldest_job_goes_past_max_jobs(make: Make) -> None:
    state = make(max_jobs=2)
    jobs = Jobs(state, concurrency=10)
    for _ in range(3):
        await jobs.submit(T0)
    assert (await state.read("job1", T0)).stored is None
    assert (await state.read("job3", T0)).stored is not None


async def test_a_waiting_job_evicted_past_max_jobs_leaves_its_queue(make: Make) -> None:
    state = make(max_jobs=2)
    jobs = Jobs(state)
    await jobs.submit(T0, plan=Plan(queue_delay=10.0, run_seconds=60.0))  # waits to T0+10
    second = await jobs.submit(T0)
    assert second is not None and second.record.start_at == T0 + 70  # FIFO: behind job1
    third = await jobs.submit(T0 + 1)  # job1, the oldest, goes: job2 moves up
    assert (await state.read("job1", T0 + 1)).stored is None
    moved = await jobs.view("job2", T0 + 1)
    assert moved.record.start_at == T0 + 1 and moved.phase is Phase.RUNNING
    assert third is not None and third.record.start_at == T0 + 61
    assert (await jobs.view("job3", T0 + 1)).record == third.record


async def test_rate_limit_windows_count_per_key_and_bucket(make: Make) -> None:
    state = make()
    limit = RateLimit(2, 60)
    gate = Gate("p", Operation.STATUS, "k1", limit)
    waits = [(await state.passage(gate, T0 + i)).wait for i in range(3)]
    assert waits == [None, None, 60 - 2 - T0 % 60]
    assert (await state.passage(Gate("p", Operation.STATUS, "k2", limit), T0)).wait is None
    assert (await state.passage(Gate("p", Operation.SUBMIT, "k1", limit), T0)).wait is None
    next_window = T0 - T0 % 60 + 60
    assert (await state.passage(gate, next_window)).wait is None
    assert (await state.passage(Gate("p", Operation.STATUS, "", limit), T0)).wait is None


async def test_scripts_pop_most_specific_first_and_a_blocking_one_creates_nothing(
        make: Make) -> None:
    state = make()
    assert await state.script([ScriptedFault(FaultKind.HTTP_503, 3.0)], provider=None,
                              operation=None) == 1
    assert await state.script([ScriptedFault(FaultKind.PASS), ScriptedFault(FaultKind.DROP)],
                              provider="p", operation=Operation.STATUS) == 2
    assert await state.scripted() == {"*:*": ["http-503"], "p:status": ["pass", "drop"]}
    gate = Gate("p", Operation.STATUS, "k")
    assert (await state.passage(gate, T0)).script == ScriptedFault(FaultKind.PASS)
    read = await state.read("nope", T0, gate)
    assert read.passage.script == ScriptedFault(FaultKind.DROP)
    created = await state.create(_record("a", start=T0), None, T0,
                                 Gate("p", Operation.SUBMIT, "k"))
    assert created.passage.blocks and created.stored is None
    assert created.passage.script == ScriptedFault(FaultKind.HTTP_503, 3.0)
    assert (await state.read("a", T0)).stored is None
    assert await state.scripted() == {}
    assert (await state.passage(gate, T0)).script is None


async def test_journal_keeps_summaries_of_every_request(make: Make) -> None:
    state = make()
    for i, (op, status) in enumerate([("submit", 202), ("status", 200), ("status", 503),
                                      ("status", 200)]):
        await state.record(Request("p", Operation(op), "GET", "/x", "job1", "k", status,
                                   T0 + i, 0.0, 1.0, Phase.RUNNING))
    journal = await state.journal()
    assert journal.total == 4
    summary = journal.job("job1")
    assert summary is not None and summary.polls == 2 and summary.retries == 1
    assert journal.tally.requests[("p", "status", 200)] == 2
    assert [e.status for e in journal.query(job_id="job1")] == [202, 200, 503, 200]


async def test_preset_census_next_change_and_reset(make: Make) -> None:
    state = make()
    assert await state.preset() == ""
    await state.set_preset("flaky")
    assert await state.preset() == "flaky"
    jobs = Jobs(state)
    await jobs.submit(T0)
    await jobs.submit(T0)
    census = await state.census(T0 + 1)
    assert census.total == 2 and census.jobs["p"] == {
        **dict.fromkeys(Phase, 0), Phase.RUNNING: 1, Phase.QUEUED: 1}
    assert census.submitted == {"p": 2}
    assert census.queues == {"p:o": (1, 1)}
    assert await state.next_change(T0 + 1) == T0 + 60
    await state.script([ScriptedFault(FaultKind.DROP)], provider=None, operation=None)
    await state.record(Request("p", Operation.STATUS, "GET", "/x", "job1", "k", 200, T0, 0.0,
                               1.0))
    identity = state.identity
    await state.reset()
    assert (await state.read("job1", T0)).stored is None
    assert await state.scripted() == {} and (await state.journal()).total == 0
    assert await state.next_change(T0) is None and (await state.census(T0)).total == 0
    assert state.identity == identity


async def test_admission_through_the_state_directly(make: Make) -> None:
    state = make()
    admission = Admission("q", T0 + 5, 10.0, 1)
    first = await state.create(_record("a"), admission, T0)
    second = await state.create(_record("b"), admission, T0)
    assert first.stored is not None and second.stored is not None
    assert (first.stored.record.start_at, second.stored.record.start_at) == (T0 + 5, T0 + 15)
    assert (first.stored.slot_position, second.stored.slot_position) == (0, 1)


async def test_jobs_of_lists_an_owners_live_jobs_newest_first_paged_and_filtered(
        make: Make) -> None:
    state = make(max_jobs=6)
    jobs = Jobs(state, evict_after=100.0)  # concurrency 1: job1 runs, the others wait
    for at, owner in ((T0, "o"), (T0 + 1, "o"), (T0 + 2, "other"), (T0 + 3, "o"),
                      (T0 + 3, "o")):
        await jobs.submit(at, owner=owner, retention=500)
    now = T0 + 5

    async def ids(**kw: Any) -> tuple[list[str], int]:
        page = await state.jobs_of("p", kw.pop("owner", "o"), kw.pop("now", now),
                                   **{"offset": 0, "limit": 10, **kw})
        return [s.record.id for s in page.stored], page.total

    assert await ids() == (["job5", "job4", "job2", "job1"], 4)  # ties: later created first
    assert await ids(owner="other") == (["job3"], 1)
    assert await ids(owner="nobody") == ([], 0)
    assert await ids(offset=1, limit=2) == (["job4", "job2"], 4)
    assert await ids(offset=9, limit=2) == ([], 4)
    assert await ids(phases=frozenset({Phase.RUNNING})) == (["job1"], 1)
    assert await ids(phases=frozenset({Phase.QUEUED})) == (["job5", "job4", "job2"], 3)
    assert await ids(since=T0 + 1, until=T0 + 3) == (["job5", "job4", "job2"], 3)
    assert await ids(model="other-model") == ([], 0)
    page = await state.jobs_of("p", "o", now, offset=0, limit=10)
    positions = {s.record.id: s.slot_position for s in page.stored}
    assert positions == {"job5": 2, "job4": 1, "job2": 0, "job1": None}  # per-key queue
    assert page.stored[-1] == (await state.read("job1", now)).stored
    # a cancel reschedules those behind; listing reads them as read does
    cancelled = await jobs.engine.cancel("p", "job2", "o", now, allowed=(Phase.QUEUED,))
    assert cancelled.cancelled_now
    page = await state.jobs_of("p", "o", now, offset=0, limit=10)
    assert [s.slot_position for s in page.stored] == [1, 0, None, None]
    assert await ids(phases=frozenset({Phase.CANCELLED})) == (["job2"], 1)
    # past evict_at: gone from the list even before anything evicts it
    assert await ids(now=T0 + 700) == ([], 0)
    await jobs.submit(T0 + 700)  # evicts them all
    assert await ids(now=T0 + 701) == (["job6"], 1)
    assert await ids(owner="other", now=T0 + 701) == ([], 0)
    await state.reset()
    assert await ids() == ([], 0)


async def test_jobs_of_forgets_jobs_evicted_past_max_jobs(make: Make) -> None:
    state = make(max_jobs=2)
    jobs = Jobs(state, concurrency=10)
    for _ in range(3):
        await jobs.submit(T0)
    page = await state.jobs_of("p", "o", T0, offset=0, limit=10)
    assert [s.record.id for s in page.stored] == ["job3", "job2"] and page.total == 2
