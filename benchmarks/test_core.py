"""Micro-benchmarks of the hot path's parts. Ratios, not absolute times, are the result:
``make bench`` prints each against the 1k baseline of the same run (flat = ~1.0)."""

from __future__ import annotations

import random

import pytest

from wanmock import schemas
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import Links, SubmitInput, TheRouter
from wanmock.server.engine import Engine
from wanmock.server.journal import Journal
from wanmock.server.state import MemoryState, at_once
from wanmock.server.vocab import Operation, Phase

pytestmark = pytest.mark.benchmark(group="core")
BODY = {"model": "wan/wan2.2-t2i-flash", "prompt": "a lighthouse at dusk", "size": "1024x768",
        "n": 1, "seed": 7}


@pytest.mark.benchmark(group="poll-state")
def test_state_per_poll(benchmark, sized) -> None:  # type: ignore[no-untyped-def]
    """Cost of computing one job's view as the number of retained jobs grows."""
    _, engine, ids = sized
    rng = random.Random(1)
    picks = [(ids[rng.randrange(len(ids))], f"k{0}") for _ in range(1000)]
    now = len(ids) * 0.01
    owners = {job: at_once(engine.state.read(job, now)).stored.record.owner  # type: ignore[union-attr]
              for job, _ in picks}

    def poll() -> None:
        for job, _ in picks:
            at_once(engine.lookup("therouter", job, owners[job], now))

    benchmark.extra_info["jobs"] = len(ids)
    benchmark(poll)


def test_request_validation(benchmark) -> None:  # type: ignore[no-untyped-def]
    benchmark(schemas.check, "therouter/submit-request", BODY)


def test_response_rendering(benchmark) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(MemoryState(FakeClock(), seed=1))
    dialect = TheRouter()
    lifecycle = Config().lifecycle
    _, view = at_once(engine.submit(
        provider="therouter", owner="k", request=dialect.parse_submit(SubmitInput(BODY)),
        retention=604_800.0, now=0.0, make_id=dialect.new_id, plan=engine.plan(lifecycle),
        lifecycle=lifecycle))
    assert view is not None
    links = Links("http://127.0.0.1:8000", lambda v: ["http://127.0.0.1:8000/files/x.png"])
    stored = at_once(engine.state.read(view.id, 10.0)).stored
    assert stored is not None
    benchmark(dialect.render_status, engine.view(stored, 10.0), links)


def test_journal_append(benchmark) -> None:  # type: ignore[no-untyped-def]
    journal = Journal(capacity=10_000, max_jobs=10_000)
    counter = iter(range(10**9))

    def append() -> None:
        i = next(counter)
        journal.record(provider="therouter", operation=Operation.STATUS, method="GET",
                       path="/v1/jobs/x", job_id=f"j{i % 5000}", key="k", status=200,
                       sim_time=float(i), real_time=0.0, duration_ms=0.1, phase=Phase.RUNNING)

    benchmark(append)


@pytest.mark.benchmark(group="asgi")
@pytest.mark.parametrize("journal", [True, False], ids=["journal-on", "journal-off"])
def test_full_request_through_the_asgi_app(benchmark, journal: bool) -> None:  # type: ignore[no-untyped-def]
    """One GET poll through the whole app, driven at the ASGI level (no HTTP client)."""
    import asyncio

    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 1}, journal={"enabled": journal}),
                     clock=clock)
    rt = app.state.wanmock
    dialect = rt.dialects["therouter"]
    _, view = at_once(rt.engine.submit(
        provider="therouter", owner=rt.owner("k"), request=dialect.parse_submit(
            SubmitInput(BODY)), retention=604_800.0, now=clock.now(), make_id=dialect.new_id,
        plan=rt.engine.plan(rt.config.lifecycle), lifecycle=rt.config.lifecycle))
    assert view is not None
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": f"/v1/jobs/{view.id}", "raw_path": b"", "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"),
                                          (b"authorization", b"Bearer k")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}

    async def receive() -> dict:  # type: ignore[type-arg]
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        if message["type"] == "http.response.start":
            assert message["status"] == 200

    loop = asyncio.new_event_loop()

    def one() -> None:
        loop.run_until_complete(app(dict(scope), receive, send))

    benchmark(one)
    loop.close()
