"""The status-poll fast path answers exactly what the full Starlette stack answers.

Every test drives two apps built from one config and seed — fast path on and off — with the same
requests on their own fake clocks, and compares status, raw headers and body byte for byte, then
the journals entry by entry (wall-clock fields aside).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Message

from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import Reply
from wanmock.server.vocab import Operation
from wanmock.server.web.app import WanmockApp
from wanmock.server.web.handlers import encode_reply, respond

TR_BODY = {"model": "wan/wan2.2-t2i-flash", "prompt": "a lighthouse"}
RC_BODY = {"prompt": "a lighthouse"}
SUBMIT = {"therouter": ("/v1/images/generations?async=true", TR_BODY),
          "runcomfy": ("/v1/models/wan-ai/wan-2-2/flash/text-to-image", RC_BODY)}
POLL = {"therouter": "/v1/jobs/{}", "runcomfy": "/v1/requests/{}/status"}
CANCEL = {"therouter": "/v1/jobs/{}/cancel", "runcomfy": "/v1/requests/{}/cancel"}
SCENARIOS = ["", "", "fail-moderation", "stuck", "stuck-running", "fail-after-2-polls",
             "expire-after-30s", "queue-3", "cancel-after-5s", "queue-10s", "no-such-scenario"]
KEYS = ["alice", "bob", "", "Basic xyz"]


#: Submit bodies that break the schema, by variant and provider.
BODIES = {"schema": {"therouter": {**TR_BODY, "n": 99}, "runcomfy": {"prompt": ""}},
          "extra": {"therouter": {**TR_BODY, "style": "x"}, "runcomfy": {**RC_BODY, "x": 1}}}
VARIANTS = ["ok", "ok", "ok", "chunked", "bad-json", "schema", "extra", "model", "media", "async",
            "big", "big-chunked"]


class _Chunks:
    """A request body sent in several ASGI messages (``more_body``), without Content-Length."""

    def __init__(self, raw: bytes) -> None:
        self.parts = [raw[i:i + 700] for i in range(0, len(raw), 700)]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


def _config(**sections: Any) -> Config:
    lifecycle = {"queue_delay": "uniform(0,5)", "run_time": "uniform(5,40)", "concurrency": 2,
                 "failure_rate": 0.2, **sections.pop("lifecycle", {})}
    server = {"seed": 7, "max_body_bytes": 1024, **sections.pop("server", {})}
    return Config().replace(server=server,
                            lifecycle=lifecycle, **sections)


class Twins:
    """The same app twice, fast path on (``fast``) and off (``full``), on separate fake clocks."""

    def __init__(self, config: Config) -> None:
        self.clocks = (FakeClock(), FakeClock())
        self.apps: tuple[WanmockApp, WanmockApp] = (
            create_app(config, clock=self.clocks[0]),
            create_app(config.replace(server={"fast_path": False}), clock=self.clocks[1]),
        )
        assert self.apps[0].fast_path is not None and self.apps[1].fast_path is None
        self.clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                          base_url="http://127.0.0.1:8000") for app in self.apps]
        self.jobs: list[tuple[str, str]] = []

    @property
    def answered_fast(self) -> int:
        fast = self.apps[0].fast_path
        assert fast is not None
        return fast.answered[Operation.STATUS]

    @property
    def submitted_fast(self) -> int:
        fast = self.apps[0].fast_path
        assert fast is not None
        return fast.answered[Operation.SUBMIT]

    async def request(self, method: str, path: str, key: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if key:
            headers["authorization"] = key if " " in key else f"Bearer {key}"
        fast, full = [await c.request(method, path, headers=headers, **kw) for c in self.clients]
        assert (fast.status_code, fast.headers.raw, fast.content) == (
            full.status_code, full.headers.raw, full.content), f"{method} {path} differs"
        return fast

    async def submit(self, provider: str, key: str, scenario: str = "",
                     variant: str = "ok") -> None:
        path, body = SUBMIT[provider]
        headers = {"x-wanmock-scenario": scenario} if scenario else {}
        headers["content-type"] = "text/plain" if variant == "media" else "application/json"
        raw = json.dumps(BODIES.get(variant, {}).get(provider, body)).encode()
        if variant == "model":
            path = path.replace("wan/", "wan-x/").replace("wan-ai/", "nope/")
        elif variant == "bad-json":
            raw = raw[:-3]
        elif variant == "async":
            path = path.replace("async=true", "async=maybe")
        elif variant in ("big", "big-chunked"):
            raw = json.dumps({**body, "prompt": "x" * 2000}).encode()
        content: Any = _Chunks(raw) if variant.endswith("chunked") else raw
        response = await self.request("POST", path, key, content=content, headers=headers)
        if response.status_code < 300:
            data = response.json()
            self.jobs.append((provider, data.get("id") or data["request_id"]))

    def advance(self, seconds: float) -> None:
        for clock in self.clocks:
            clock.advance(seconds)

    def check_journals(self) -> None:
        fast, full = (app.state.wanmock.journal for app in self.apps)
        assert fast.total == full.total
        wall = {"real_time", "duration_ms"}
        assert ([{k: v for k, v in e.to_dict().items() if k not in wall} for e in fast.entries]
                == [{k: v for k, v in e.to_dict().items() if k not in wall}
                    for e in full.entries])
        assert [s.to_dict() for s in fast.jobs()] == [s.to_dict() for s in full.jobs()]

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


def _run(config: Config, steps: list[tuple[Any, ...]]) -> Twins:
    async def play() -> Twins:
        twins = Twins(config)
        try:
            for step in steps:
                await _step(twins, *step)
        finally:
            await twins.close()
        twins.check_journals()
        return twins

    return asyncio.run(play())


async def _step(twins: Twins, kind: str, *args: Any) -> None:
    if kind == "advance":
        twins.advance(args[0])
    elif kind == "submit":
        await twins.submit(*args)
    elif kind in ("poll", "cancel", "delete") and twins.jobs:
        index, key, other = args
        provider, job = twins.jobs[index % len(twins.jobs)]
        if other:  # the other provider's route for this id, or a mangled id
            provider, job = ("runcomfy" if provider == "therouter" else "therouter",
                             job) if other == "provider" else (provider, job[:-1] + "/x")
        if kind == "poll":
            await twins.request("GET", POLL[provider].format(job), key)
        elif kind == "cancel":
            await twins.request("POST", CANCEL[provider].format(job), key)
        elif provider == "therouter":
            await twins.request("DELETE", POLL[provider].format(job), key)


_provider = st.sampled_from(sorted(SUBMIT))
_key = st.sampled_from(KEYS[:2]) | st.sampled_from(KEYS)
_steps = st.lists(st.one_of(
    st.tuples(st.just("submit"), _provider, _key, st.sampled_from(SCENARIOS),
              st.sampled_from(VARIANTS)),
    st.tuples(st.just("advance"), st.sampled_from([0.5, 3, 10, 45, 400])),
    *(st.tuples(st.just(kind), st.integers(0, 50), _key,
                st.sampled_from(["", "", "", "", "provider", "mangled"]))
      for kind in ("poll", "poll", "poll", "cancel", "delete")),
), min_size=15, max_size=80)


@given(_steps)
def test_the_fast_path_answers_exactly_like_the_full_stack(steps: list[tuple[Any, ...]]) -> None:
    _run(_config(therouter={"cancel_running": True}), steps)


def test_a_lifecycle_is_answered_on_the_fast_path() -> None:
    steps: list[tuple[Any, ...]] = [("submit", "therouter", "alice", ""),
                                    ("submit", "runcomfy", "alice", ""),
                                    ("submit", "runcomfy", "alice", ""),
                                    ("submit", "runcomfy", "alice", "")]
    for _ in range(12):  # queued (positions moving), running, succeeded, expired
        steps += [("poll", 0, "alice", ""), ("poll", 1, "alice", ""), ("poll", 3, "alice", ""),
                  ("advance", 7)]
    steps += [("cancel", 3, "alice", ""), ("poll", 3, "alice", ""), ("advance", 8 * 86400),
              ("poll", 0, "alice", ""), ("poll", 1, "alice", "")]
    twins = _run(_config(lifecycle={"failure_rate": 0}), steps)
    assert twins.submitted_fast == 4
    assert twins.answered_fast >= 36  # most of the 41 polls; errors went the full way


def test_it_stands_aside_when_faults_limits_latency_or_keys_could_act() -> None:
    steps: list[tuple[Any, ...]] = [("submit", "therouter", "alice", ""),
                                    ("submit", "runcomfy", "alice", ""),
                                    *[("poll", i, k, "") for i in range(2) for k in KEYS]]
    for sections, polls, submits in (
        ({"faults": {"rules": [{"fault": "http-503", "rate": 0.5}]}}, 0, 0),
        ({"rate_limit": {"poll": "3/60"}}, 0, 2),
        ({"rate_limit": {"submit": "3/60"}}, 2, 0),
        ({"latency": {"status": "fixed(0)"}}, 0, 2),
        ({"latency": {"submit": "fixed(0)"}}, 2, 0),
        ({"server": {"api_keys": ["bob"]}}, 0, 0),
        ({"journal": {"enabled": False}, "server": {"public_base_url": "https://x.example"}},
         2, 2),
    ):
        twins = _run(_config(**sections), steps)
        assert (twins.answered_fast, twins.submitted_fast) == (polls, submits), sections


def test_a_rule_for_one_provider_leaves_the_other_on_the_fast_path() -> None:
    polls: list[tuple[Any, ...]] = [("submit", "therouter", "alice", ""),
                                    ("submit", "runcomfy", "alice", ""),
                                    ("poll", 0, "alice", ""), ("poll", 1, "alice", "")]
    rule = {"fault": "http-500", "rate": 1.0, "provider": "runcomfy", "operation": "status"}
    assert _run(_config(faults={"rules": [rule]}), polls).answered_fast == 1


def test_scripted_responses_go_the_full_way() -> None:
    async def play() -> None:
        twins = Twins(_config())
        await twins.submit("therouter", "alice")
        for app in twins.apps:
            script = {"responses": ["http-503", "pass"], "operation": "status"}
            assert (await httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                            base_url="http://127.0.0.1:8000").post(
                "/__admin/script", json=script)).status_code == 200
        job = twins.jobs[0][1]
        assert (await twins.request("GET", f"/v1/jobs/{job}", "alice")).status_code == 503
        assert (await twins.request("GET", f"/v1/jobs/{job}", "alice")).status_code == 200
        assert twins.answered_fast == 0  # both scripted answers came from the full stack
        assert (await twins.request("GET", f"/v1/jobs/{job}", "alice")).status_code == 200
        assert twins.answered_fast == 1
        await twins.close()
        twins.check_journals()

    asyncio.run(play())


def test_a_cancel_or_a_reschedule_is_seen_at_the_next_poll() -> None:
    config = _config(lifecycle={"queue_delay": "fixed(1)", "run_time": "fixed(60)",
                                "concurrency": 1, "failure_rate": 0},
                     therouter={"cancel_running": True})
    steps: list[tuple[Any, ...]] = [
        ("submit", "therouter", "alice", ""), ("advance", 2),
        ("poll", 0, "alice", ""), ("cancel", 0, "alice", ""), ("poll", 0, "alice", ""),
        *[("submit", "runcomfy", "alice", "") for _ in range(3)], ("advance", 2),
        ("poll", 3, "alice", ""), ("cancel", 2, "alice", ""), ("poll", 3, "alice", ""),
    ]
    twins = _run(config, steps)
    assert twins.answered_fast == 4
    bodies = [e for e in twins.apps[0].state.wanmock.journal.entries if e.operation == "status"]
    assert [e.phase for e in bodies] == ["running", "cancelled", "queued", "queued"]


def test_sync_mode_submits_go_the_full_way() -> None:
    async def play() -> None:
        twins = Twins(_config(lifecycle={"queue_delay": "fixed(0)", "run_time": "fixed(0)",
                                         "failure_rate": 0}))
        for query in ("", "?async=false"):
            response = await twins.request("POST", "/v1/images/generations" + query, "alice",
                                            json=TR_BODY)
            assert response.status_code == 200 and "data" in response.json()
        assert twins.submitted_fast == 0
        await twins.submit("therouter", "alice")
        assert twins.submitted_fast == 1
        await twins.close()
        twins.check_journals()

    asyncio.run(play())


@pytest.mark.parametrize("reply", [
    Reply(200, {"id": "img_1", "status": "queued", "prompt": "ü ✓"}),
    Reply(202, {"request_id": "x"}, {"X-Extra": "1"}),
    Reply(429, {"error": {}}, {"retry-after": "5"}),
    Reply(302, None, {"location": "http://127.0.0.1:8000/files/x.png?sig=1"}),
    Reply(204, None),
    Reply(200, {"a": 1}, {"Content-Type": "application/problem+json"}),
])
@pytest.mark.anyio
async def test_encode_reply_sends_what_the_starlette_response_sends(reply: Reply) -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    await respond(reply)({"type": "http", "method": "GET"}, receive, send)
    assert encode_reply(reply) == (sent[0]["status"], sent[0]["headers"], sent[1]["body"])
