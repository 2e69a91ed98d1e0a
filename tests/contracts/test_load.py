"""The load tester, in-process on the fake's own clock (no real waiting)."""

from __future__ import annotations

import httpx
import pytest

from wanmock.contracts.load import PollPolicy, is_loopback, run_load
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.cli import main

pytestmark = pytest.mark.anyio


async def load(policy: PollPolicy = PollPolicy.FIXED, **config: object):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 5}, **config), clock=clock)  # type: ignore[arg-type]
    report = await run_load("therouter", "http://127.0.0.1:8000", clients=10, duration=900,
                            poll_interval=5, policy=policy, clock=clock,
                            transport=httpx.ASGITransport(app=app))
    return report, app


async def test_a_run_reports_throughput_latency_amplification_and_outcomes() -> None:
    report, app = await load(lifecycle={"failure_rate": 0.2})
    data = report.summary()
    assert data["seconds"] >= 900 and data["clients"] == 10
    assert data["submitted"] >= 30 and data["finished"] >= 30
    assert set(data["outcomes"]) <= {"succeeded", "failed", "unfinished"}
    assert data["outcomes"]["succeeded"] > data["outcomes"].get("failed", 0) > 0
    # 30-180 s jobs polled every 5 s: between 6 and ~40 polls per finished job
    assert 6 <= data["poll_amplification"] <= 40
    assert {"submit", "poll", "download"} <= set(data["latency_ms"])
    journal = app.state.wanmock.journal
    assert journal.total == report.requests  # the fake saw every request
    assert not [e for e in journal.entries if e.flags]  # and the simulated clients behaved
    assert "poll amplification" in report.render()


async def test_backoff_polls_less_than_fixed() -> None:
    fixed, _ = await load(PollPolicy.FIXED)
    backoff, _ = await load(PollPolicy.BACKOFF)
    assert backoff.summary()["poll_amplification"] < fixed.summary()["poll_amplification"]


async def test_errors_are_counted_by_kind_and_retry_after_is_honoured() -> None:
    report, app = await load(PollPolicy.RETRY_AFTER, faults={"rules": [
        {"fault": "http-503", "rate": 0.1, "operation": "status", "retry_after": 7}]})
    assert report.errors["http-503"] > 0
    flags = [f for e in app.state.wanmock.journal.entries for f in e.flags]
    assert "ignored-retry-after" not in flags


async def test_max_jobs_bounds_the_run() -> None:
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 5}), clock=clock)
    report = await run_load("runcomfy", "http://127.0.0.1:8000", clients=5, duration=10_000,
                            max_jobs=7, poll_interval=5, clock=clock,
                            transport=httpx.ASGITransport(app=app))
    assert report.submitted == 7


async def test_remote_targets_are_refused_without_permission() -> None:
    assert is_loopback("http://127.0.0.1:8000") and is_loopback("http://localhost:1")
    assert not is_loopback("https://api.therouter.ai")
    with pytest.raises(ValueError, match="loopback-only"):
        await run_load("therouter", "https://api.therouter.ai", duration=1)


def test_cli_refuses_remote_and_states_cost(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["load", "--provider", "therouter", "--base-url", "https://api.therouter.ai"])
    assert info.value.code == 2 and "--allow-remote" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["load", "--provider", "therouter", "--base-url", "https://api.therouter.ai",
              "--allow-remote", "--max-jobs", "3"])
    captured = capsys.readouterr()
    assert "about $0.144" in captured.out and "add --yes" in captured.err
