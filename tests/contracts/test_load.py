"""The load tester, in-process on the fake's own clock (no real waiting)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket

import httpx
import pytest

from wanmock.contracts.drivers import DRIVERS
from wanmock.contracts.load import LoadReport, PollPolicy, find_dashboard, is_loopback, run_load
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.cli import build_parser, main

pytestmark = pytest.mark.anyio


async def load(policy: PollPolicy = PollPolicy.FIXED, *, download: bool = True,  # type: ignore[no-untyped-def]
               **config: object):
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 5}, **config), clock=clock)  # type: ignore[arg-type]
    report = await run_load("therouter", "http://127.0.0.1:8000", clients=10, duration=900,
                            poll_interval=5, policy=policy, clock=clock, download=download,
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
    # polls of finished jobs only, per finished job: what the fake itself counted
    seen = [job.polls for job in app.state.wanmock.journal.jobs()
            if job.terminal_seen_at is not None]
    assert data["finished"] == len(seen)
    assert data["poll_amplification"] == round(sum(seen) / len(seen), 2)
    assert {"submit", "poll", "download"} <= set(data["latency_ms"])
    journal = app.state.wanmock.journal
    assert journal.total == report.requests  # the fake saw every request
    assert not [e for e in journal.entries if e.flags]  # and the simulated clients behaved
    assert "poll amplification" in report.render()


async def test_backoff_polls_less_than_fixed() -> None:
    fixed, _ = await load(PollPolicy.FIXED, download=False)
    backoff, _ = await load(PollPolicy.BACKOFF, download=False)
    assert backoff.summary()["poll_amplification"] < fixed.summary()["poll_amplification"]


async def test_errors_are_counted_by_kind_and_retry_after_is_honoured() -> None:
    report, app = await load(PollPolicy.RETRY_AFTER, download=False, faults={"rules": [
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


# --- verdicts, back-off, consistent counts, a readable report ---------------------------------


class Refusing(httpx.AsyncBaseTransport):
    """A server that is not there: every request (or every poll) fails to connect.

    Records when, on the fake clock, each failing request was sent."""

    def __init__(self, clock: FakeClock, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.clock, self.inner = clock, inner
        self.refused: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.inner is not None and request.method == "POST":
            return await self.inner.handle_async_request(request)
        self.refused.append(self.clock.now())
        raise httpx.ConnectError("connection refused", request=request)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


async def test_connection_errors_back_off_exponentially_up_to_a_cap() -> None:
    clock = FakeClock()
    refusing = Refusing(clock)
    report = await run_load("therouter", "http://127.0.0.1:8000", clients=1, duration=60,
                            max_jobs=1000, clock=clock, transport=refusing)
    assert gaps(refusing.refused)[:7] == [0.25, 0.5, 1, 2, 4, 8, 8]
    assert max(gaps(refusing.refused)) == 8  # capped
    assert report.connection_errors == len(refusing.refused) < 15  # not a tight loop
    assert not report.ok


async def test_polls_that_get_no_answer_back_off_too() -> None:
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 5}), clock=clock)
    refusing = Refusing(clock, inner=httpx.ASGITransport(app=app))  # submits work, polls fail
    report = await run_load("runcomfy", "http://127.0.0.1:8000", clients=1, duration=60,
                            max_jobs=1, poll_interval=1, clock=clock, transport=refusing)
    assert gaps(refusing.refused)[:7] == [1, 1, 1, 2, 4, 8, 8]  # never sooner than the interval
    assert report.submitted == 1 and report.outcomes == {"unfinished": 1}


async def heavy_faults(provider: str, *, duration: float = 400, **kw: object) -> LoadReport:
    """A run against a server failing every way it can, cut off while jobs are in flight."""
    clock = FakeClock()
    rules = [{"fault": "drop", "rate": 0.05},
             {"fault": "http-503", "rate": 0.1, "operation": "status", "retry_after": 3},
             {"fault": "truncated-json", "rate": 0.05, "operation": "status"},
             {"fault": "malformed-json", "rate": 0.1, "operation": "submit"},
             {"fault": "http-502", "rate": 0.1, "operation": "submit"},
             {"fault": "malformed-json", "rate": 0.2, "operation": "result"},
             {"fault": "drop", "rate": 0.3, "operation": "download"}]
    app = create_app(Config().replace(server={"seed": 7}, faults={"rules": rules},
                                      lifecycle={"failure_rate": 0.2}), clock=clock)
    return await run_load(provider, "http://127.0.0.1:8000", clients=8, duration=duration,
                          poll_interval=5, clock=clock, transport=httpx.ASGITransport(app=app),
                          **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", sorted(DRIVERS))
async def test_finished_plus_unfinished_is_submitted_on_every_path(provider: str) -> None:
    report = await heavy_faults(provider)
    data = report.summary()
    assert data["unfinished"] > 0 and data["finished"] > 0  # the run cut jobs off
    assert {"bad-submit-body", "http-502", "http-503", "ConnectionDropped"} <= set(data["errors"])
    assert data["finished"] + data["unfinished"] == data["submitted"]
    assert sum(data["outcomes"].values()) == data["submitted"]
    assert (f"{data['submitted']} jobs submitted = {data['finished']} finished + "
            f"{data['unfinished']} unfinished") in report.render()
    assert json.loads(json.dumps(data)) == data


async def test_the_report_is_aligned_tables_not_python_reprs() -> None:
    report = await heavy_faults("therouter", duration=200)
    text = report.render()
    assert "{" not in text and "Counter" not in text and "'" not in text
    lines = text.splitlines()
    outcomes = lines[lines.index("  outcome         jobs") + 1:]
    outcomes = outcomes[:outcomes.index("")]
    assert [line.split()[0] for line in outcomes] == list(report.summary()["outcomes"])
    assert len({len(line) for line in outcomes}) == 1  # right-aligned counts
    header = next(line for line in lines if line.split()[:3] == ["error", "count", "share"])
    errors = lines[lines.index(header) + 1:]
    errors = errors[:errors.index("")]
    assert len({len(line) for line in [header, *errors]}) == 1
    assert {line.split()[0] for line in errors} == set(report.errors)


async def test_the_verdict_follows_the_error_rate() -> None:
    clean, _ = await load(download=False)
    assert clean.ok and "PASS: 0.00% of" in clean.render()
    assert clean.summary()["ok"] is True and clean.summary()["verdict"] is None
    failing, _ = await load(download=False, faults={"rules": [
        {"fault": "http-503", "rate": 0.05, "operation": "status", "retry_after": 5}]})
    assert failing.connection_errors == 0 and failing.error_rate > 0.01
    assert not failing.ok and "more than the 1.00% allowed" in failing.render()
    assert failing.summary()["ok"] is False
    failing.max_error_rate = 0.2
    assert failing.ok
    dropped = await heavy_faults("therouter", duration=100, max_error_rate=None)
    assert dropped.connection_errors and "got no answer" in (dropped.verdict or "")
    dropped.max_error_rate = 1.0  # an explicit rate counts connection errors like any other
    assert dropped.ok


async def test_no_download_skips_the_images() -> None:
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 5}), clock=clock)
    report = await run_load("runcomfy", "http://127.0.0.1:8000", clients=3, duration=400,
                            poll_interval=5, clock=clock, download=False,
                            transport=httpx.ASGITransport(app=app))
    assert report.finished > 0 and {"submit", "poll", "result"} == set(report.latencies)
    operations = {e.operation for e in app.state.wanmock.journal.entries}
    assert "download" not in operations


def test_live_line_shows_the_current_rate_beside_the_overall_one() -> None:
    report = LoadReport("therouter", "http://127.0.0.1:8000", 1)
    for second, total in [(0.0, 0), (0.5, 50), (1.0, 100), (1.5, 100), (2.0, 100)]:
        report.latencies["poll"].extend([1.0] * (total - report.requests))
        report.seconds = second
        line = report.live_line()
    assert "0.0 req/s now, 50.0 req/s overall" in line
    report.latencies["poll"].extend([1.0] * 30)
    report.seconds = 2.5
    assert "30.0 req/s now" in report.live_line()


@pytest.mark.parametrize(("argv", "message"), [
    (["--clients", "0"], "argument --clients: must be a whole number >= 1, got '0'"),
    (["--duration", "0"], "argument --duration: must be > 0, got 0"),
    (["--duration", "-5"], "argument --duration: must be > 0, got -5"),
    (["--max-jobs", "0"], "argument --max-jobs: must be a whole number >= 1"),
    (["--poll-interval", "0"], "argument --poll-interval: must be > 0"),
    (["--max-error-rate", "150%"], "argument --max-error-rate: must be between 0 and 1"),
])
def test_cli_rejects_empty_runs_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["load", "--provider", "therouter", *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


async def test_run_load_rejects_empty_runs() -> None:
    with pytest.raises(ValueError, match="clients must be > 0"):
        await run_load("therouter", "http://127.0.0.1:8000", clients=0)
    with pytest.raises(ValueError, match="duration must be > 0"):
        await run_load("therouter", "http://127.0.0.1:8000", duration=-1)
    with pytest.raises(ValueError,
                       match="unknown provider 'x'; known: dashscope, runcomfy, therouter"):
        await run_load("x", "http://127.0.0.1:8000")


def test_cli_flags_reach_the_run() -> None:
    args = build_parser().parse_args(["load", "--provider", "therouter", "--no-download",
                                      "--max-error-rate", "5%"])
    assert args.download is False and args.max_error_rate == 0.05
    assert build_parser().parse_args(["load", "--provider", "therouter"]).download is True


def test_cli_exits_non_zero_when_the_server_cannot_be_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(["load", "--provider", "therouter", "--base-url", f"http://127.0.0.1:{port}",
                 "--clients", "1", "--max-jobs", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["ok"] is False and data["connection_errors"] == 1
    assert data["errors"] == {"ConnectError": 1} and data["submitted"] == 0


async def test_the_report_points_at_the_dashboard_of_the_wanmock_it_loaded() -> None:
    report, _ = await load(download=False)
    assert report.dashboard == "http://127.0.0.1:8000/__admin/"
    assert report.summary()["dashboard"] == report.dashboard
    assert report.render().splitlines()[-1] == (
        "  dashboard: http://127.0.0.1:8000/__admin/  "
        "(Prometheus: http://127.0.0.1:8000/__admin/metrics)")
    # a token-protected wanmock still has one; a server that is not wanmock has none
    locked = create_app(Config().replace(server={"admin_token": "t"}), clock=FakeClock())
    assert await find_dashboard("http://127.0.0.1:8000/", httpx.ASGITransport(app=locked)) == (
        "http://127.0.0.1:8000/__admin/")

    async def other(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"status": "fine"}'})  # type: ignore[operator]

    assert await find_dashboard("http://127.0.0.1:8000",
                                httpx.ASGITransport(app=other)) is None  # type: ignore[arg-type]
    refused = httpx.MockTransport(lambda request: (_ for _ in ()).throw(
        httpx.ConnectError("refused", request=request)))
    assert await find_dashboard("http://127.0.0.1:8000", refused) is None


async def test_answers_the_server_holds_on_the_fake_clock_do_not_hang_the_run() -> None:
    """A timeout fault holds a poll's answer on the fake clock: the run's clock must still
    jump (it waited only for sleeping clients, and hung for good)."""
    clock = FakeClock()
    app = create_app(Config().replace(faults={"rules": [
        {"fault": "timeout", "operation": "status", "rate": 0.2}]}), clock=clock)
    run = run_load("therouter", "http://127.0.0.1:8000", clients=3, duration=300,
                   poll_interval=5, clock=clock, transport=httpx.ASGITransport(app=app))
    report = await asyncio.wait_for(run, 60)  # a bound on a hang, not a timing assertion
    assert report.seconds >= 300 and report.submitted >= 3
    assert app.state.wanmock.journal.total == report.requests


def test_cli_refuses_a_server_whose_clock_never_moves(capsys: pytest.CaptureFixture[str]) -> None:
    """On a fake clock no job can finish in real time: the run would say PASS with every job
    unfinished. A scaled clock is fine."""
    from wanmock.server.web.serve import LiveServer

    argv = ["load", "--provider", "therouter", "--clients", "1", "--duration", "1",
            "--poll-interval", "0.005", "--json"]
    with (LiveServer(create_app(Config(), clock=FakeClock())) as server,
          pytest.raises(SystemExit) as refused):
        main([*argv, "--base-url", server.url])
    assert refused.value.code == 2 and "--time-scale" in capsys.readouterr().err
    scaled = Config().replace(server={"time_scale": 1000})
    with LiveServer(create_app(scaled)) as server:
        assert main([*argv, "--base-url", server.url]) == 0
    assert json.loads(capsys.readouterr().out)["finished"] >= 1

