"""Shared fixtures for the micro-benchmarks: engines pre-filled with named sizes of jobs."""

from __future__ import annotations

import os

import pytest

from wanmock.server.clock import FakeClock
from wanmock.server.config import LifecycleConfig, QueueScope
from wanmock.server.distributions import Fixed, Uniform
from wanmock.server.engine import Engine
from wanmock.server.lifecycle import JobRequest
from wanmock.server.state import MemoryState, at_once

#: Named sizes; ``WANMOCK_BENCH_SIZES=1k,100k`` narrows them (1M takes ~20 s to build).
SIZES = {"1k": 1_000, "100k": 100_000, "1M": 1_000_000}
SELECTED = [s for s in os.environ.get("WANMOCK_BENCH_SIZES", "1k,100k,1M").split(",") if s]
REQUEST = JobRequest(model="wan/wan2.2-t2i-flash", prompt="a lighthouse at dusk, oil painting",
                     width=1024, height=1024, seed=7)
_ENGINES: dict[str, tuple[Engine, list[str]]] = {}


def filled_engine(size: str) -> tuple[Engine, list[str]]:
    """An engine holding ``SIZES[size]`` jobs from 1000 keys (built once per run)."""
    if size not in _ENGINES:
        config = LifecycleConfig(run_time=Uniform(30, 180), queue_delay=Fixed(1),
                                 concurrency=2, queue_scope=QueueScope.ACCOUNT)
        engine = Engine(MemoryState(FakeClock(), seed=42))
        counter = iter(range(10**9))
        ids = []
        for i in range(SIZES[size]):
            _, view = at_once(engine.submit(
                provider="therouter", owner=f"k{i % 1000}", request=REQUEST,
                retention=604_800.0, now=float(i) * 0.01, plan=engine.plan(config),
                lifecycle=config, make_id=lambda rng, tag: f"img_{next(counter):026d}"))
            assert view is not None
            ids.append(view.id)
        _ENGINES[size] = (engine, ids)
    return _ENGINES[size]


@pytest.fixture(params=SELECTED)
def sized(request: pytest.FixtureRequest) -> tuple[str, Engine, list[str]]:
    engine, ids = filled_engine(request.param)
    return request.param, engine, ids
