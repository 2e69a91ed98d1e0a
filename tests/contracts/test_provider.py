"""The provider suite passes on the fake and fails on servers that break the contract."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wanmock.contracts.provider import verify_provider
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.cli import main
from wanmock.server.web.serve import LiveServer

pytestmark = pytest.mark.anyio
PROVIDERS = ["therouter", "runcomfy"]


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
