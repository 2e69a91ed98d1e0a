"""The census counts jobs by phase exactly as ``state_at`` would, job by job, at any instant."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import now
from wanmock.server.clock import FakeClock
from wanmock.server.lifecycle import (
    Failure,
    JobRecord,
    JobRequest,
    Slotted,
    phase_changes,
    state_at,
)
from wanmock.server.state import MemoryState
from wanmock.server.state.census import PhaseCensus
from wanmock.server.vocab import FailureKind, Phase

REQUEST = JobRequest(model="m", prompt="p", width=8, height=8)
times = st.sampled_from([0.0, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf])


@st.composite
def records(draw: st.DrawFn, provider: str | None = None) -> JobRecord:
    start = draw(times)
    end = start + draw(st.sampled_from([0.0, 1.0, 4.0, math.inf]))
    expires = draw(st.sampled_from([3.0, 20.0, 50.0, math.inf]))
    cancelled = draw(st.none() | times.filter(math.isfinite))
    return JobRecord(id=draw(st.uuids()).hex, provider=provider or draw(st.sampled_from("ab")),
                     owner="k", request=REQUEST, created_at=0.0, start_at=start, end_at=end,
                     expires_at=expires, evict_at=math.inf, schedule=Slotted("q", 0),
                     failure=draw(st.none() | st.just(Failure(FailureKind.INTERNAL, "x"))),
                     cancelled_at=cancelled)


def brute(jobs: list[JobRecord], t: float) -> dict[str, dict[Phase, int]]:
    out: dict[str, Counter[Phase]] = {}
    for job in jobs:
        out.setdefault(job.provider, Counter())[state_at(job, t).phase] += 1
    return {p: {phase: n for phase, n in c.items() if n} for p, c in out.items()}


def nonzero(counts: dict[str, dict[Phase, int]]) -> dict[str, dict[Phase, int]]:
    out = {p: {phase: n for phase, n in c.items() if n} for p, c in counts.items()}
    return {p: c for p, c in out.items() if c}


@given(records(), st.lists(st.floats(-10, 100), max_size=20))
def test_phase_changes_agree_with_state_at(job: JobRecord, instants: list[float]) -> None:
    changes = phase_changes(job)
    assert changes[0][0] == -math.inf
    for t in [*instants, *(at for at, _ in changes[1:])]:
        entered = [phase for at, phase in changes if at <= t]
        assert entered[-1] is state_at(job, t).phase, t


@given(st.lists(records(), max_size=30), st.data())
def test_census_agrees_with_a_scan_after_adds_changes_and_removals(
        jobs: list[JobRecord], data: st.DataObject) -> None:
    census = PhaseCensus()
    for job in jobs:
        census.admit(job)
    kept = list(jobs)
    for i in range(len(kept)):
        what = data.draw(st.sampled_from(["keep", "cancel", "remove"]))
        if what == "cancel":
            changed = dataclasses.replace(kept[i], cancelled_at=data.draw(times))
            census.remove(kept[i])
            census.add(changed)
            kept[i] = changed
        elif what == "remove":
            census.remove(kept[i])
            kept[i] = None  # type: ignore[call-overload]
    kept = [job for job in kept if job is not None]
    for t in (0.0, 1.0, 2.5, 3.0, 7.0, 20.0, 60.0):
        assert nonzero(census.jobs(t)) == brute(kept, t), t
    assert census.submitted() == dict(Counter(job.provider for job in jobs))


def test_finished_counts_forgotten_jobs_that_had_finished_only() -> None:
    census = PhaseCensus()
    done = JobRecord(id="a", provider="p", owner="k", request=REQUEST, created_at=0, start_at=1,
                     end_at=2, expires_at=10, evict_at=20, schedule=Slotted("q", 0))
    waiting = dataclasses.replace(done, id="b", start_at=math.inf, end_at=math.inf,
                                  expires_at=math.inf)
    census.admit(done)
    census.admit(waiting)
    assert census.finished(1.5) == {} and census.finished(2) == {"p": {Phase.SUCCEEDED: 1}}
    census.forget(done, 30)
    census.forget(waiting, 30)  # evicted by the cap before it ever ran: never finished
    assert census.finished(30) == {"p": {Phase.SUCCEEDED: 1}}
    assert nonzero(census.jobs(30)) == {}


@pytest.mark.parametrize("max_jobs", [5, 1000])
def test_memory_state_census_matches_a_scan_through_queues_cancels_and_eviction(
        max_jobs: int) -> None:
    from wanmock.server.state import Admission

    clock = FakeClock()
    state = MemoryState(clock, seed=1, max_jobs=max_jobs)
    t0 = clock.now()
    ids = []
    for i in range(12):
        job = JobRecord(id=f"j{i}", provider="ab"[i % 2], owner="k", request=REQUEST,
                        created_at=t0, start_at=math.inf, end_at=math.inf,
                        expires_at=t0 + 500, evict_at=t0 + 900, schedule=Slotted("q", -1))
        created = now(state.create(job, Admission("p:k", t0 + 1, 10, 2), clock.now()))
        assert created.stored is not None
        ids.append(job.id)
        clock.advance(1)
    stored = now(state.read("j7", clock.now())).stored
    if stored is not None:  # a queued job leaves its queue: the ones behind move up
        assert now(state.cancel("j7", stored.version, clock.now(), queued=True)) is not None
    for step in (0, 5, 20, 40, 600, 1000):
        clock.advance(step)
        t = clock.now()
        census = now(state.census(t))
        live = [found.record for i in ids
                if (found := now(state.read(i, t)).stored) is not None]
        assert nonzero(census.jobs) == brute(live, t), step
        assert census.total == len(live)
        assert census.submitted == {"a": 6, "b": 6}
