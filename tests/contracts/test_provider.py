"""The provider suite passes on the fake and fails on servers that break the contract."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
from collections.abc import Callable

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wanmock.contracts.drivers import DRIVERS
from wanmock.contracts.provider import admin_clock_wait, clock_mode_problem, verify_provider
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.cli import main
from wanmock.server.dialects import default_registry
from wanmock.server.web.serve import LiveServer

pytestmark = pytest.mark.anyio
PROVIDERS = sorted(DRIVERS)


async def run(app: ASGIApp, clock: FakeClock, provider: str, **kw: object):  # type: ignore[no-untyped-def]
    async def wait(seconds: float) -> None:
        clock.advance(seconds)

    return await verify_provider(provider, "http://127.0.0.1:8000", "key", wait=wait,
                                 transport=httpx.ASGITransport(app=app), **kw)  # type: ignore[arg-type]


def rewrite(app: ASGIApp, change: Callable[[str, dict], dict | None]) -> ASGIApp:  # type: ignore[type-arg]
    """Wrap the fake so JSON bodies on some paths are rewritten: a server that lies."""

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        held: list[Message] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                held.append(message)
                return
            start = held.pop()
            body = message.get("body", b"")
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            new = change(scope["path"], data) if isinstance(data, dict) else None
            if new is not None:
                body = json.dumps(new).encode()
                start["headers"] = [(k, v) for k, v in start["headers"]
                                    if k != b"content-length"] + [
                    (b"content-length", str(len(body)).encode())]
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return broken


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_fake_passes_every_check(provider: str, clock: FakeClock) -> None:
    report = await run(create_app(Config().replace(server={"seed": 1}), clock=clock), clock,
                       provider)
    assert report.ok, report.render()
    assert [r.outcome for r in report.results] == ["pass"] * 5
    assert "5 passed, 0 failed" in report.render()


async def test_wrong_status_words_are_caught_with_the_schema_path(clock: FakeClock) -> None:
    app = rewrite(create_app(clock=clock), lambda path, body:
                  {**body, "status": "done"} if body.get("status") == "succeeded" else None)
    report = await run(app, clock, "therouter")
    assert not report.ok
    text = report.render()
    assert "FAIL  submit, poll to a terminal state" in text
    assert "status must be one of" in text and "schema therouter/job" in text and "/status" in text


async def test_status_going_backwards_is_caught(clock: FakeClock) -> None:
    def backwards(path: str, body: dict) -> dict | None:  # type: ignore[type-arg]
        if path.endswith("/status") and body.get("status") == "completed":
            backwards.calls += 1  # type: ignore[attr-defined]
            if backwards.calls == 2:  # type: ignore[attr-defined]
                return {**body, "status": "in_progress"}
        return None

    backwards.calls = 0  # type: ignore[attr-defined]
    report = await run(rewrite(create_app(clock=clock), backwards), clock, "runcomfy")
    failure = report.failures()[0]
    assert "terminal state did not absorb: succeeded then running" in failure.detail


async def test_inconsistent_urls_and_a_200_for_unknown_ids_are_caught(clock: FakeClock) -> None:
    def lie(path: str, body: dict) -> dict | None:  # type: ignore[type-arg]
        if "status_url" in body and "cancel_url" in body:
            return {**body, "status_url": body["status_url"].replace("/status", "/state")}
        return None

    report = await run(rewrite(create_app(clock=clock), lie), clock, "runcomfy")
    assert any("status_url" in r.detail for r in report.failures())


async def test_cancel_check_is_skipped_with_one_job(clock: FakeClock) -> None:
    report = await run(create_app(clock=clock), clock, "runcomfy", max_jobs=1)
    assert report.results[-1].outcome == "skip" and report.ok


def test_verify_cli_against_a_live_fake(capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(Config().replace(server={"seed": 2}), clock=FakeClock())
    with LiveServer(app) as server:
        code = main(["verify", "--provider", "runcomfy", "--base-url", server.url,
                     "--fake-clock", "--api-key", "k"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"wanmock contract check: runcomfy at {server.url}" in out
    assert "5 passed, 0 failed" in out


def test_verify_cli_exits_non_zero_on_failure(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    app = rewrite(create_app(clock=clock), lambda path, body: {**body, "request_id": 5}
                  if "request_id" in body else None)
    with LiveServer(app) as server:
        code = main(["verify", "--provider", "runcomfy", "--base-url", server.url,
                     "--fake-clock", "--max-jobs", "1"])
    assert code == 1
    assert "request_id must be of type string" in capsys.readouterr().out


# --- a report, never a crash -------------------------------------------------------------------


async def script(app: ASGIApp, provider: str, operation: str, *responses: object) -> None:
    """Queue faults on one endpoint through the admin API, as a user would."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:8000") as admin:
        answer = await admin.post("/__admin/script", json={
            "provider": provider, "operation": operation, "responses": list(responses)})
        assert answer.status_code == 200, answer.text


async def test_progress_is_reported_as_each_check_runs(clock: FakeClock) -> None:
    lines: list[str] = []
    report = await run(create_app(Config().replace(server={"seed": 1}), clock=clock), clock,
                       "therouter", progress=lines.append)
    assert report.ok, report.render()
    lifecycle = "submit, poll to a terminal state, fetch the result"
    start, end = lines.index(f"....  {lifecycle}"), lines.index(f"PASS  {lifecycle}")
    polls = [line.strip() for line in lines[start:end] if line.strip().startswith("poll ")]
    assert polls[0] == "poll 1: queued after 0 s" and polls[-1].endswith(
        "succeeded after " + polls[-1].rsplit(" ", 2)[1] + " s")
    assert len(polls) >= 7  # 30-180 s jobs, polled every 5 s
    assert lines[0] == "....  bad auth is answered in the documented error shape"
    assert lines[-1] == "PASS  cancel follows the provider's rules"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_and_503_are_waited_out_as_retry_after_asks(
    provider: str, clock: FakeClock
) -> None:
    app = create_app(Config().replace(server={"seed": 1}), clock=clock)
    await script(app, provider, "status", {"fault": "http-503", "retry_after": 7},
                 {"fault": "http-429", "retry_after": 11})
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    report = await verify_provider(provider, "http://127.0.0.1:8000", "key", wait=wait,
                                   transport=httpx.ASGITransport(app=app))
    assert report.ok, report.render()
    assert waits[:2] == [7, 11]
    assert report.retries == {503: 1, 429: 1}
    assert "retried 2 requests answered 429 x1, 503 x1 (waited 18 s in all, honouring " \
           "Retry-After)" in report.render()
    flags = [f for e in app.state.wanmock.journal.entries for f in e.flags]  # type: ignore[attr-defined]
    assert "ignored-retry-after" not in flags


async def test_the_rate_limited_preset_passes_a_polite_verifier(clock: FakeClock) -> None:
    app = create_app(Config().replace(server={"seed": 1}).with_preset("rate-limited"),
                     clock=clock)
    report = await run(app, clock, "runcomfy", poll_interval=0.5)  # over its 10 polls per 10 s
    assert report.ok, report.render()
    assert report.retries[429] >= 1 and "429 x" in report.render()


async def test_retries_are_bounded_then_the_answer_is_judged(clock: FakeClock) -> None:
    app = create_app(Config().replace(server={"seed": 1}), clock=clock)
    await script(app, "therouter", "status", *["http-503"] * 6)
    report = await run(app, clock, "therouter", max_jobs=1)
    failure = report.failures()[0]
    assert failure.name == "an unknown id is answered 404 in the documented shape"
    assert "answered 503, expected 404" in failure.detail
    assert "retried 3 requests answered 503 x3" in failure.detail


async def test_a_retry_after_longer_than_the_limit_is_not_waited(clock: FakeClock) -> None:
    app = create_app(Config().replace(server={"seed": 1}), clock=clock)
    await script(app, "therouter", "status", "pass", {"fault": "http-503", "retry_after": 3600})
    report = await run(app, clock, "therouter", max_jobs=1)
    assert "poll answered 503" in report.failures()[0].detail
    assert not report.retries


async def test_a_run_past_its_timeout_fails_the_running_check_saying_so(
    clock: FakeClock,
) -> None:
    async def stuck(seconds: float) -> None:
        await asyncio.Event().wait()  # time never passes: only the timeout ends this

    report = await verify_provider("runcomfy", "http://127.0.0.1:8000", "key", wait=stuck,
                                   transport=httpx.ASGITransport(app=create_app(clock=clock)),
                                   timeout=0.2)
    assert [r.outcome for r in report.results] == ["pass", "pass", "pass", "fail", "skip"]
    lifecycle, cancel = report.results[3:]
    assert lifecycle.detail.startswith("timed out: the whole run may take 0.2 s of real time")
    assert "ran out while waiting 5 s to poll job" in lifecycle.detail
    assert "(poll 1 saw queued, 0 s waited)" in lifecycle.detail
    assert cancel.detail == "not run: the timeout ran out"


async def test_a_409_from_the_admin_clock_is_a_fail_line(clock: FakeClock) -> None:
    real = create_app(Config().replace(server={"seed": 1}))  # a real (scaled) clock
    transport = httpx.ASGITransport(app=real)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as admin:
        report = await verify_provider("therouter", "http://127.0.0.1:8000", "key",
                                       wait=admin_clock_wait(admin), transport=transport,
                                       max_jobs=1)
    (failure,) = report.failures()
    assert failure.detail.startswith("advancing the server's clock failed: POST "
                                     "/__admin/clock/advance answered 409: the clock is real")


async def test_a_missing_field_is_a_fail_line_naming_it(clock: FakeClock) -> None:
    app = rewrite(create_app(clock=clock), lambda path, body: {
        k: v for k, v in body.items() if k != "unsigned_urls"} if "unsigned_urls" in body
        else None)
    report = await run(app, clock, "therouter", max_jobs=1)
    (failure,) = report.failures()
    assert "lacks 'unsigned_urls'" in failure.detail


async def test_a_body_that_is_not_json_is_a_fail_line(clock: FakeClock) -> None:
    app = create_app(Config().replace(server={"seed": 1}), clock=clock)
    await script(app, "runcomfy", "cancel", "truncated-json")
    report = await run(app, clock, "runcomfy")
    (failure,) = report.failures()
    assert failure.name == "cancel follows the provider's rules"
    assert "body is not valid JSON" in failure.detail


@pytest.mark.parametrize("seed", [1, 4, 12])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_flaky_preset_gets_a_report_never_a_traceback(
    provider: str, seed: int, clock: FakeClock
) -> None:
    app = create_app(Config().replace(server={"seed": seed}).with_preset("flaky"), clock=clock)
    report = await run(app, clock, provider)
    assert len(report.results) == 5
    assert all(r.detail for r in report.failures())


def test_cli_connection_refused_is_a_fail_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(["verify", "--provider", "therouter", "--base-url", f"http://127.0.0.1:{port}"])
    out = capsys.readouterr().out
    assert code == 1
    assert (f"FAIL  bad auth is answered in the documented error shape\n"
            f"        cannot connect to http://127.0.0.1:{port}: connection refused") in out
    assert "not run: the server could not be reached" in out


@pytest.mark.parametrize(("url", "why"), [
    ("localhost:8000", "Request URL has an unsupported protocol 'localhost://'; write it with "
                       "a scheme: 'http://localhost:8000'"),
    ("127.0.0.1", "Request URL is missing an 'http://' or 'https://' protocol; write it with "
                  "a scheme: 'http://127.0.0.1'"),
    ("http://[::1", "Invalid"),
])
@pytest.mark.parametrize("fake_clock", [[], ["--fake-clock"]])
def test_cli_a_bad_url_is_a_fail_line(
    url: str, why: str, fake_clock: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", "--provider", "runcomfy", "--base-url", url, *fake_clock])
    assert code == 1
    assert f"FAIL  bad auth is answered in the documented error shape\n        bad base URL " \
           f"{url!r}: {why}" in capsys.readouterr().out


def test_cli_prints_progress_to_stderr_and_the_report_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(Config().replace(server={"seed": 2}), clock=FakeClock())
    with LiveServer(app) as server:
        code = main(["verify", "--provider", "therouter", "--base-url", server.url,
                     "--fake-clock", "--max-jobs", "1", "--timeout", "60"])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert "  ....  an invalid body is a 4xx naming the field" in captured.err
    assert "    poll 1: queued after 0 s" in captured.err
    assert "poll 1" not in captured.out and "4 passed, 0 failed" in captured.out


def test_cli_refuses_a_fake_clock_server_without_fake_clock(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = LiveServer(create_app(clock=FakeClock()))
    with server, pytest.raises(SystemExit) as info:
        main(["verify", "--provider", "therouter", "--base-url", server.url, "--timeout", "5"])
    assert info.value.code == 2
    assert "runs a fake clock" in (err := capsys.readouterr().err) and "add --fake-clock" in err


def test_cli_refuses_fake_clock_against_a_real_clock_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = LiveServer(create_app(Config().replace(server={"time_scale": 1000})))
    with server, pytest.raises(SystemExit) as info:
        main(["verify", "--provider", "runcomfy", "--base-url", server.url, "--fake-clock",
              "--timeout", "5"])
    assert info.value.code == 2
    assert "runs a real clock" in (err := capsys.readouterr().err) and "drop --fake-clock" in err


async def test_the_clock_probe_judges_servers_without_an_admin_api() -> None:
    from starlette.applications import Starlette

    provider = httpx.ASGITransport(app=Starlette())  # answers 404 everywhere, like a real API
    url = "http://127.0.0.1:8000"
    assert await clock_mode_problem(url, fake_clock=False, transport=provider) is None
    refusal = await clock_mode_problem(url, fake_clock=True, transport=provider)
    assert refusal is not None and "answered 404" in refusal and "drop --fake-clock" in refusal
    fake = httpx.ASGITransport(app=create_app(clock=FakeClock()))
    assert await clock_mode_problem(url, fake_clock=True, transport=fake) is None
    assert await clock_mode_problem("http://127.0.0.1:1", fake_clock=True) is None  # unreachable


async def test_an_unknown_provider_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown provider 'nosuch'; known: dashscope, runcomfy, "
                                         "therouter"):
        await verify_provider("nosuch", "http://127.0.0.1:8000", "key")


# --- cancel: a queued job must be cancellable -------------------------------------------------

#: Each provider's own refusal of a cancel, for a job id (as its fake refuses a running job).
REFUSALS: dict[str, Callable[[str], tuple[int, dict]]] = {  # type: ignore[type-arg]
    "therouter": lambda job: (409, {"error": {
        "message": "Job cannot be cancelled in status queued", "type": "invalid_request_error",
        "code": "job_not_cancellable", "param": None}}),
    "dashscope": lambda job: (400, {
        "request_id": "7574ee8f-38a3-4b1e-9280-11c33ab46e51", "code": "UnsupportedOperation",
        "message": "Failed to cancel the task, please confirm if the task is in PENDING "
                   "status."}),
    "runcomfy": lambda job: (202, {"request_id": job, "status": "in_queue",
                                   "outcome": "not_cancellable"}),
}


def refuse_cancels(app: ASGIApp, provider: str) -> ASGIApp:
    """A server that refuses every cancel in its provider's words; the job keeps running."""

    async def refusing(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/cancel"):
            return await app(scope, receive, send)
        status, data = REFUSALS[provider](scope["path"].split("/")[-2])
        body = json.dumps(data).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return refusing


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_server_refusing_to_cancel_a_queued_job_fails(
    provider: str, clock: FakeClock
) -> None:
    app = refuse_cancels(create_app(Config().replace(server={"seed": 1}), clock=clock), provider)
    report = await run(app, clock, provider)
    (failure,) = report.failures()
    assert failure.name == "cancel follows the provider's rules"
    assert "/cancel of a queued job answered" in failure.detail
    assert "the job is still queued; expected it cancelled" in failure.detail


async def test_a_refusal_after_the_job_started_is_not_judged(clock: FakeClock) -> None:
    """On a real clock the job may start between the read and the cancel: a refusal then is
    the provider's rule, not a lie (the job here ignores the scenario header and finishes)."""
    fake = create_app(Config().replace(server={"seed": 1}), clock=clock)

    async def real_like(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                          if k != b"x-wanmock-scenario"]}
            if scope["path"].endswith("/cancel"):
                clock.advance(3600)  # it ran and finished meanwhile
        await fake(scope, receive, send)

    report = await run(real_like, clock, "therouter")
    assert report.ok, report.render()


# --- status and result answers must be about the job asked for -------------------------------


def other_job(provider: str) -> Callable[[str, dict], dict | None]:  # type: ignore[type-arg]
    """A lie: every status or result answer names another job (the provider's unknown id)."""
    facts = default_registry().get(provider).client

    def lie(path: str, body: dict) -> dict | None:  # type: ignore[type-arg]
        try:
            job = facts.job_id(body)
        except (KeyError, TypeError):
            return None
        if job not in path or path.endswith("/cancel"):
            return None  # the submit answer, or a cancel's
        changed = copy.deepcopy(body)
        where = changed
        for name in facts.id_field[:-1]:
            where = where[name]
        where[facts.id_field[-1]] = facts.unknown_id
        return changed

    return lie


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_answers_about_another_job_fail(provider: str, clock: FakeClock) -> None:
    app = rewrite(create_app(Config().replace(server={"seed": 1}), clock=clock),
                  other_job(provider))
    report = await run(app, clock, provider)
    names = [r.name for r in report.failures()]
    assert names == ["submit, poll to a terminal state, fetch the result",
                     "cancel follows the provider's rules"], report.render()
    unknown = default_registry().get(provider).client.unknown_id
    detail = report.failures()[0].detail
    assert f"answered about job '{unknown}', not the job asked for" in detail
    lines = [line for line in detail.splitlines() if "not the job asked for" in line]
    assert len(lines) == len(set(lines))  # said once per endpoint, not once per poll


# --- a job is its owner's ----------------------------------------------------------------------


def anonymous_reads(app: ASGIApp) -> ASGIApp:
    """A server that checks keys on submit only: a GET without a key acts as the owner."""

    async def lax(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not any(
                k == b"authorization" for k, _ in scope["headers"]):
            scope = {**scope, "headers": [*scope["headers"], (b"authorization", b"Bearer key")]}
        await app(scope, receive, send)

    return lax


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_job_readable_without_a_key_fails(provider: str, clock: FakeClock) -> None:
    app = anonymous_reads(create_app(Config().replace(server={"seed": 1}), clock=clock))
    report = await run(app, clock, provider)
    (failure,) = report.failures()
    assert failure.name == "submit, poll to a terminal state, fetch the result"
    assert "without an Authorization header answered 200; expected the provider's auth " \
           "error (401)" in failure.detail


# --- an answer agrees with itself --------------------------------------------------------------


def _swap(body: dict, where: str, early: str, late: str) -> dict | None:  # type: ignore[type-arg]
    part = body.get(where) if where else body
    if not isinstance(part, dict) or not (part.get(early) and part.get(late)) \
            or part[early] == part[late]:
        return None
    swapped = {**part, early: part[late], late: part[early]}
    return {**body, where: swapped} if where else swapped


SELF_CONTRADICTIONS = {
    "therouter-expires-after-1-day": (
        "therouter",
        lambda path, body: {**body, "expires_at": body["created_at"] + 86400}
        if isinstance(body.get("created_at"), int) and "expires_at" in body else None,
        "expires_at {e} is created_at {c} + 86400 s; expected + 604800 s (the documented "
        "retention)"),
    "runcomfy-finished-before-created": (
        "runcomfy",
        lambda path, body: _swap(body, "", "created_at", "finished_at")
        if path.endswith("/result") else None,
        "/result: finished_at {e} is before created_at {c}"),
    "dashscope-ended-before-submitted": (
        "dashscope",
        lambda path, body: _swap(body, "output", "submit_time", "end_time"),
        "output.end_time {e} is before output.submit_time {c}"),
    "dashscope-no-billed-image": (
        "dashscope",
        lambda path, body: {**body, "usage": {**body["usage"], "image_count": 0}}
        if isinstance(body.get("usage"), dict) else None,
        "usage.image_count is 0, but output.results holds 1 image; expected 1"),
}


@pytest.mark.parametrize("lie", sorted(SELF_CONTRADICTIONS))
async def test_answers_contradicting_themselves_fail(lie: str, clock: FakeClock) -> None:
    provider, change, expected = SELF_CONTRADICTIONS[lie]
    app = rewrite(create_app(Config().replace(server={"seed": 1}), clock=clock), change)
    report = await run(app, clock, provider)
    assert not report.ok
    lifecycle = next(r for r in report.results if r.name.startswith("submit, poll"))
    assert lifecycle.outcome == "fail", report.render()
    head, _, tail = expected.partition("{e}")
    assert head in lifecycle.detail and tail.split("{c}")[0] in lifecycle.detail, \
        lifecycle.detail
