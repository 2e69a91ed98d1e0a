import pytest

from wanmock.server.clock import FakeClock
from wanmock.server.config import LifecycleConfig, QueueScope
from wanmock.server.distributions import Fixed
from wanmock.server.engine import Engine, Plan
from wanmock.server.errors import JobForbidden, JobNotFound
from wanmock.server.lifecycle import JobRequest
from wanmock.server.state import MemoryState
from wanmock.server.vocab import Phase

pytestmark = pytest.mark.anyio

REQUEST = JobRequest(model="m", prompt="p", width=512, height=512)


class Harness:
    def __init__(self, **changes: object) -> None:
        settings: dict[str, object] = dict(run_time=Fixed(60), queue_delay=Fixed(0),
                                           concurrency=1)
        settings.update(changes)
        self.lifecycle = LifecycleConfig(**settings)  # type: ignore[arg-type]
        self.state = MemoryState(FakeClock(), seed=3)
        self.engine = Engine(self.state)

    async def submit(self, now: float, owner: str = "o", plan: Plan | None = None,
                     retention: float = 1000.0):  # type: ignore[no-untyped-def]
        _, view = await self.engine.submit(
            provider="p", owner=owner, request=REQUEST, retention=retention, now=now,
            plan=plan or self.engine.plan(self.lifecycle), lifecycle=self.lifecycle,
            make_id=lambda rng, tag: f"job-{rng.random()}")
        assert view is not None
        return view


async def test_queue_positions_are_real_and_shrink() -> None:
    h = Harness()
    views = [await h.submit(0.0) for _ in range(4)]
    assert [v.phase for v in views] == [Phase.RUNNING] + [Phase.QUEUED] * 3
    assert [v.queue_position for v in views[1:]] == [0, 1, 2]
    later = await h.engine.lookup("p", views[3].id, "o", 61.0)
    assert later.queue_position == 1


async def test_seed_is_drawn_when_missing_and_kept_when_given() -> None:
    view = await Harness().submit(0.0)
    assert view.record.request.seed is None and isinstance(view.record.seed, int)


async def test_visibility_is_per_owner_and_provider() -> None:
    h = Harness()
    view = await h.submit(0.0)
    with pytest.raises(JobForbidden):
        await h.engine.lookup("p", view.id, "someone-else", 0.0)
    with pytest.raises(JobNotFound):
        await h.engine.lookup("other-provider", view.id, "o", 0.0)
    with pytest.raises(JobNotFound):
        await h.engine.lookup("p", "nope", "o", 0.0)


async def test_cancel_only_in_allowed_phases_and_reschedules_the_rest() -> None:
    h = Harness()
    a, b, c = [await h.submit(0.0) for _ in range(3)]
    assert c.record.start_at == 120.0
    running = await h.engine.cancel("p", a.id, "o", 1.0)
    assert not running.cancelled_now and running.view.phase is Phase.RUNNING
    done = await h.engine.cancel("p", b.id, "o", 1.0)
    assert done.cancelled_now and done.view.phase is Phase.CANCELLED and done.before is Phase.QUEUED
    assert (await h.engine.lookup("p", c.id, "o", 1.0)).record.start_at == 60.0
    again = await h.engine.cancel("p", b.id, "o", 2.0)
    assert not again.cancelled_now and again.view.phase is Phase.CANCELLED
    running_ok = await h.engine.cancel("p", a.id, "o", 3.0,
                                       allowed=(Phase.QUEUED, Phase.RUNNING))
    assert running_ok.cancelled_now and running_ok.view.phase is Phase.CANCELLED


async def test_account_scope_gives_each_key_its_own_queue() -> None:
    h = Harness()
    assert (await h.submit(0.0, owner="a")).phase is Phase.RUNNING
    assert (await h.submit(0.0, owner="b")).phase is Phase.RUNNING
    shared = Harness(queue_scope=QueueScope.PROVIDER)
    assert (await shared.submit(0.0, owner="a")).phase is Phase.RUNNING
    assert (await shared.submit(0.0, owner="b")).phase is Phase.QUEUED


async def test_plans_decide_failure_and_stuck_jobs() -> None:
    h = Harness(failure_rate=1.0)
    view = await h.submit(0.0)
    assert view.record.failure is not None
    assert (await h.engine.lookup("p", view.id, "o", view.record.end_at)).phase is Phase.FAILED
    await h.submit(0.0)  # waits behind the first
    stuck = await h.submit(0.0, plan=Plan(stuck_in_queue=True))
    found = await h.engine.lookup("p", stuck.id, "o", 999.0)
    assert found.phase is Phase.QUEUED and found.queue_position == 1


async def test_a_provider_side_cancel_shows_the_position_until_it_happens() -> None:
    """Review finding: a cancel-after job behind two others showed no queue_position."""
    h = Harness()
    for _ in range(3):
        await h.submit(0.0)  # one running, two waiting
    doomed = await h.submit(0.0, plan=Plan(cancel_after=30.0))
    assert doomed.phase is Phase.QUEUED and doomed.queue_position == 2
    later = await h.engine.lookup("p", doomed.id, "o", 30.0)
    assert later.phase is Phase.CANCELLED and later.queue_position is None


async def test_same_seed_same_fates() -> None:
    a, b = Harness(run_time=Fixed(1)), Harness(run_time=Fixed(1))
    assert ([(await a.submit(0.0)).id for _ in range(5)]
            == [(await b.submit(0.0)).id for _ in range(5)])


async def test_expired_jobs_are_evicted_after_the_grace_period() -> None:
    h = Harness(evict_after=100.0)
    old = await h.submit(0.0)
    assert (await h.engine.lookup("p", old.id, "o", 1000.0)).phase is Phase.EXPIRED
    await h.submit(1100.0)  # submits evict what is due
    with pytest.raises(JobNotFound):
        await h.engine.lookup("p", old.id, "o", 1100.0)
    assert len(h.state) == 1


async def test_expired_and_evicted_jobs_leave_their_queue() -> None:
    """Issue 11: new jobs waited behind ghosts, and the queue grew without limit."""
    h = Harness(evict_after=0.0, run_time=Fixed(100))
    h.state.max_jobs = 100
    for _ in range(300):
        await h.submit(0.0, retention=3600.0)
    assert len(h.state) == 100  # the cap evicted the 200 oldest, taking them out of the queue
    assert await h.state.waiting("p:o", 3700.0) == 0  # the rest ran or expired waiting
    fresh = await h.submit(3700.0)
    assert fresh.phase is Phase.RUNNING
    later = [await h.submit(3700.0) for _ in range(3)]
    assert [v.queue_position for v in later] == [0, 1, 2]
