"""Invariants of the simulation core over generated histories (Hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wanmock.server.config import LifecycleConfig, QueueScope
from wanmock.server.distributions import Fixed, Uniform
from wanmock.server.engine import Engine, Plan
from wanmock.server.errors import JobNotFound
from wanmock.server.lifecycle import JobRequest
from wanmock.server.scenarios import apply_scenario
from wanmock.server.vocab import Phase

REQUEST = JobRequest(model="m", prompt="p", width=512, height=512)
RETENTION = 5_000.0

actions = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from(["a", "b"]),
                  st.sampled_from(["", "fail", "stuck", "queue-3", "expire-after-50s",
                                   "cancel-after-20s", "fail-after-2-polls"])),
        st.tuples(st.just("cancel"), st.integers(0, 40), st.none()),
        st.tuples(st.just("poll"), st.integers(0, 40), st.none()),
        st.tuples(st.just("advance"), st.floats(0, 400), st.none()),
    ),
    max_size=60,
)


def run(history: list, concurrency: int, scope: QueueScope):  # type: ignore[no-untyped-def,type-arg]
    """Play a history; yield (now, engine, ids) after each step."""
    config = LifecycleConfig(run_time=Uniform(10, 200), queue_delay=Uniform(0, 5),
                             concurrency=concurrency, queue_scope=scope, failure_rate=0.3,
                             evict_after=10_000.0)
    engine = Engine(config, seed=7)
    now = 0.0
    ids: list[tuple[str, str]] = []
    for kind, arg, extra in history:
        if kind == "submit":
            plan = engine.default_plan()
            if extra:
                plan = apply_scenario(plan, extra, backlog_drain=2.0)
            view = engine.submit(provider="p", owner=arg, request=REQUEST, retention=RETENTION,
                                 now=now, plan=plan, make_id=lambda rng: f"j{rng.random()}")
            ids.append((view.id, arg))
        elif kind in ("cancel", "poll") and ids:
            job_id, owner = ids[arg % len(ids)]
            if kind == "cancel":
                engine.cancel("p", job_id, owner, now)
            else:
                engine.note_poll(engine.lookup("p", job_id, owner, now))
        elif kind == "advance":
            now += arg
        yield now, engine, ids


@given(actions, st.integers(1, 3), st.sampled_from(list(QueueScope)))
def test_status_never_goes_backwards_and_terminal_states_absorb(history, concurrency, scope):  # type: ignore[no-untyped-def]
    last: dict[str, Phase] = {}
    for now, engine, ids in run(history, concurrency, scope):
        for job_id, owner in ids:
            phase = engine.lookup("p", job_id, owner, now).phase
            before = last.get(job_id)
            if before is not None:
                assert phase.rank >= before.rank, f"{job_id}: {before} -> {phase}"
                if before.terminal and phase is not Phase.EXPIRED:
                    assert phase is before, f"terminal {before} turned into {phase}"
            last[job_id] = phase


@given(actions, st.integers(1, 3))
def test_result_exists_iff_succeeded_and_expiry_is_exact(history, concurrency):  # type: ignore[no-untyped-def]
    for now, engine, ids in run(history, concurrency, QueueScope.ACCOUNT):
        for job_id, owner in ids:
            view = engine.lookup("p", job_id, owner, now)
            assert view.has_result == (view.phase is Phase.SUCCEEDED)
            assert (view.phase is Phase.EXPIRED) == (now >= view.record.expires_at)
            lifetime = view.record.expires_at - view.record.created_at
            assert min(abs(lifetime - RETENTION), abs(lifetime - 50.0)) < 1e-6


@given(actions, st.integers(1, 3))
def test_queue_positions_are_distinct_and_shrink(history, concurrency):  # type: ignore[no-untyped-def]
    previous: dict[str, int] = {}
    for now, engine, ids in run(history, concurrency, QueueScope.PROVIDER):
        positions: list[int] = []
        for job_id, owner in ids:
            view = engine.lookup("p", job_id, owner, now)
            record = view.record
            if view.phase is Phase.QUEUED and record.seq >= 0:  # jobs in the slot queue
                assert view.queue_position is not None
                positions.append(view.queue_position)
                if job_id in previous:
                    assert view.queue_position <= previous[job_id]
                previous[job_id] = view.queue_position
            elif view.phase is not Phase.QUEUED:
                assert view.queue_position is None
        assert len(positions) == len(set(positions)), positions


@given(actions)
def test_cancel_succeeds_only_where_allowed(history):  # type: ignore[no-untyped-def]
    for now, engine, ids in run(history, 1, QueueScope.ACCOUNT):
        for job_id, owner in ids[-3:]:
            before = engine.lookup("p", job_id, owner, now).phase
            result = engine.cancel("p", job_id, owner, now)
            assert result.cancelled_now == (before is Phase.QUEUED)
            if result.cancelled_now:
                assert result.view.phase is Phase.CANCELLED


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_evicted_jobs_are_gone_and_the_store_stays_bounded(gaps):  # type: ignore[no-untyped-def]
    config = LifecycleConfig(run_time=Fixed(1), queue_delay=Fixed(0), evict_after=100.0)
    engine = Engine(config, seed=1)
    now, ids = 0.0, []
    for gap in gaps:
        now += gap
        view = engine.submit(provider="p", owner="o", request=REQUEST, retention=500.0, now=now,
                             make_id=lambda rng: f"j{rng.random()}", plan=Plan(run_seconds=1))
        ids.append((view.id, view.record.created_at))
    for job_id, created in ids:
        if now >= created + 600.0:
            try:
                engine.lookup("p", job_id, "o", now)
            except JobNotFound:
                continue
            raise AssertionError("a job past its eviction time is still answered")
    assert len(engine.store) <= len(gaps)
