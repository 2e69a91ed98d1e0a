import pytest

from wanmock.server.config import LifecycleConfig, QueueScope
from wanmock.server.distributions import Fixed
from wanmock.server.engine import Engine, Plan
from wanmock.server.errors import JobForbidden, JobNotFound
from wanmock.server.lifecycle import JobRequest
from wanmock.server.vocab import Phase

REQUEST = JobRequest(model="m", prompt="p", width=512, height=512)


def make_engine(**changes: object) -> Engine:
    settings: dict[str, object] = dict(run_time=Fixed(60), queue_delay=Fixed(0), concurrency=1)
    settings.update(changes)
    return Engine(LifecycleConfig(**settings), seed=3)  # type: ignore[arg-type]


def submit(engine: Engine, now: float, owner: str = "o", **kw: object):  # type: ignore[no-untyped-def]
    counter = len(engine.store)
    return engine.submit(provider="p", owner=owner, request=REQUEST, retention=1000.0, now=now,
                         make_id=lambda rng: f"job-{counter}-{rng.random()}", **kw)  # type: ignore[arg-type]


def test_queue_positions_are_real_and_shrink() -> None:
    engine = make_engine()
    views = [submit(engine, 0.0) for _ in range(4)]
    assert [v.phase for v in views] == [Phase.RUNNING] + [Phase.QUEUED] * 3
    assert [v.queue_position for v in views[1:]] == [0, 1, 2]
    later = engine.lookup("p", views[3].id, "o", 61.0)
    assert later.queue_position == 1


def test_seed_is_drawn_when_missing_and_kept_when_given() -> None:
    engine = make_engine()
    view = submit(engine, 0.0)
    assert view.record.request.seed is None and isinstance(view.record.seed, int)


def test_visibility_is_per_owner_and_provider() -> None:
    engine = make_engine()
    view = submit(engine, 0.0)
    with pytest.raises(JobForbidden):
        engine.lookup("p", view.id, "someone-else", 0.0)
    with pytest.raises(JobNotFound):
        engine.lookup("other-provider", view.id, "o", 0.0)
    with pytest.raises(JobNotFound):
        engine.lookup("p", "nope", "o", 0.0)


def test_cancel_only_in_allowed_phases_and_reschedules_the_rest() -> None:
    engine = make_engine()
    a, b, c = (submit(engine, 0.0) for _ in range(3))
    assert c.record.start_at == 120.0
    running = engine.cancel("p", a.id, "o", 1.0)
    assert not running.cancelled_now and running.view.phase is Phase.RUNNING
    done = engine.cancel("p", b.id, "o", 1.0)
    assert done.cancelled_now and done.view.phase is Phase.CANCELLED and done.before is Phase.QUEUED
    assert engine.lookup("p", c.id, "o", 1.0).record.start_at == 60.0
    again = engine.cancel("p", b.id, "o", 2.0)
    assert not again.cancelled_now and again.view.phase is Phase.CANCELLED
    running_ok = engine.cancel("p", a.id, "o", 3.0, allowed=(Phase.QUEUED, Phase.RUNNING))
    assert running_ok.cancelled_now and running_ok.view.phase is Phase.CANCELLED


def test_account_scope_gives_each_key_its_own_queue() -> None:
    engine = make_engine()
    assert submit(engine, 0.0, owner="a").phase is Phase.RUNNING
    assert submit(engine, 0.0, owner="b").phase is Phase.RUNNING
    shared = make_engine(queue_scope=QueueScope.PROVIDER)
    assert submit(shared, 0.0, owner="a").phase is Phase.RUNNING
    assert submit(shared, 0.0, owner="b").phase is Phase.QUEUED


def test_plans_decide_failure_and_stuck_jobs() -> None:
    engine = make_engine(failure_rate=1.0)
    view = submit(engine, 0.0)
    assert view.record.failure is not None
    assert engine.lookup("p", view.id, "o", view.record.end_at).phase is Phase.FAILED
    stuck = submit(engine, 0.0, plan=Plan(stuck_in_queue=True))
    assert engine.lookup("p", stuck.id, "o", 999.0).phase is Phase.QUEUED
    assert engine.lookup("p", stuck.id, "o", 999.0).queue_position == 0


def test_same_seed_same_fates() -> None:
    a, b = make_engine(run_time=Fixed(1)), make_engine(run_time=Fixed(1))
    assert [submit(a, 0.0).id for _ in range(5)] == [submit(b, 0.0).id for _ in range(5)]


def test_expired_jobs_are_evicted_after_the_grace_period() -> None:
    engine = make_engine(evict_after=100.0)
    old = submit(engine, 0.0)
    assert engine.lookup("p", old.id, "o", 1000.0).phase is Phase.EXPIRED
    submit(engine, 1100.0)  # submits evict what is due
    with pytest.raises(JobNotFound):
        engine.lookup("p", old.id, "o", 1100.0)
    assert len(engine.store) == 1
