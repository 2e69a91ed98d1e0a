"""Memoised status answers are exactly what rendering each poll afresh answers.

Every test drives two apps built from one config and seed — ``server.memoise`` on and off — with
the same requests on their own fake clocks, and compares status, raw headers and body byte for
byte, then the journals entry by entry (wall-clock fields aside). The requests are generated:
submits of every body variant, polls, cancels and DELETEs with good, missing and malformed keys,
every scenario, clock jumps, ids of another provider and mangled ids.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import default_registry, unstamped
from wanmock.server.state import MemoryState
from wanmock.server.web.app import WanmockApp

FACTS = {cls.name: cls.client for cls in default_registry()}
PROVIDERS = sorted(FACTS)
SCENARIOS = ["", "", "fail-moderation", "stuck", "stuck-running", "fail-after-2-polls",
             "expire-after-30s", "queue-3", "cancel-after-5s", "queue-10s", "no-such-scenario"]
KEYS = ["alice", "bob", "", "Basic xyz"]


VARIANTS = ["ok", "ok", "ok", "chunked", "bad-json", "no-prompt", "extra", "model", "media",
            "query", "big", "big-chunked"]


def _body(provider: str, variant: str) -> dict[str, Any]:
    facts = FACTS[provider]
    body = facts.body("a lighthouse")
    if variant == "no-prompt":
        where = body
        for name in facts.prompt_field[:-1]:
            where = where[name]
        del where[facts.prompt_field[-1]]
    elif variant == "extra":
        body["style"] = "x"
    elif variant in ("big", "big-chunked"):
        body = facts.body("x" * 2000)
    return body


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
    sections = {name: value for name, value in sections.items() if value}
    return Config().replace(server=server,
                            lifecycle=lifecycle, **sections)


class Twins:
    """The same app twice, memo on (``fast``) and off (``full``), on separate fake clocks."""

    def __init__(self, config: Config) -> None:
        self.clocks = (FakeClock(), FakeClock())
        states = [MemoryState(clock, seed=config.server.seed, incarnation="twins",
                              signing_key=b"k") for clock in self.clocks]
        self.apps: tuple[WanmockApp, WanmockApp] = (
            create_app(config, state=states[0]),
            create_app(config.replace(server={"memoise": False}), state=states[1]),
        )
        assert self.apps[0].state.wanmock.memo.enabled
        assert not self.apps[1].state.wanmock.memo.enabled
        self.clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                          base_url="http://127.0.0.1:8000") for app in self.apps]
        self.jobs: list[tuple[str, str]] = []

    @property
    def hits(self) -> int:
        """Polls answered from the memo."""
        return int(self.apps[0].state.wanmock.memo.hits)

    def unstamped(self, body: bytes) -> bytes:
        """The body with any provider's per-call value (a fresh request_id) put back to its
        placeholder: the one part of an answer that differs from call to call."""
        for dialect in self.apps[0].state.wanmock.dialects.values():
            body = unstamped(dialect, body)
        return body

    async def request(self, method: str, path: str, key: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if key:
            headers["authorization"] = key if " " in key else f"Bearer {key}"
        fast, full = [await c.request(method, path, headers=headers, **kw) for c in self.clients]
        assert (fast.status_code, fast.headers.raw, self.unstamped(fast.content)) == (
            full.status_code, full.headers.raw, self.unstamped(full.content)), (
            f"{method} {path} differs")
        return fast

    async def submit(self, provider: str, key: str, scenario: str = "",
                     variant: str = "ok") -> None:
        facts = FACTS[provider]
        endpoint = facts.submit
        protocol = {name: ("maybe" if variant == "query" else value)  # a bad protocol value
                    for name, value in endpoint.headers.items()}
        headers = {**protocol, **({"x-wanmock-scenario": scenario} if scenario else {})}
        headers["content-type"] = "text/plain" if variant == "media" else "application/json"
        raw = json.dumps(_body(provider, variant)).encode()
        path = endpoint.path
        if variant == "model":
            raw = raw.replace(facts.model.encode(), b"no-such-model")
            path = path.replace(facts.model, "no-such-model")
        elif variant == "bad-json":
            raw = raw[:-3]
        query = {name: ("maybe" if variant == "query" else value)
                 for name, value in endpoint.query.items()}
        content: Any = _Chunks(raw) if variant.endswith("chunked") else raw
        response = await self.request(endpoint.method, path, key, content=content,
                                      headers=headers, params=query)
        if response.status_code < 300:
            self.jobs.append((provider, facts.job_id(response.json())))

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
        if other == "provider":  # another provider's route for this id
            provider = PROVIDERS[(PROVIDERS.index(provider) + 1) % len(PROVIDERS)]
        elif other:  # a mangled id
            job = job[:-1] + "/x"
        facts = FACTS[provider]
        endpoint = {"poll": facts.status, "cancel": facts.cancel, "delete": facts.status}[kind]
        method = "DELETE" if kind == "delete" else endpoint.method
        await twins.request(method, endpoint.url_path(job), key, params=endpoint.query,
                            headers=dict(endpoint.headers))


_provider = st.sampled_from(PROVIDERS)
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
def test_memoised_answers_are_exactly_the_rendered_ones(steps: list[tuple[Any, ...]]) -> None:
    _run(_config(therouter={"cancel_running": True}), steps)


def _polls(rounds: int) -> list[tuple[Any, ...]]:
    steps: list[tuple[Any, ...]] = [("submit", provider, "alice", "") for provider in PROVIDERS]
    steps += [("submit", PROVIDERS[-1], "alice", "") for _ in range(2)]
    for _ in range(rounds):  # queued (positions moving), running, succeeded, expired
        steps += [*(("poll", i, "alice", "") for i in range(len(PROVIDERS) + 2)), ("advance", 7)]
    return steps


def test_most_repeated_polls_are_answered_from_the_memo() -> None:
    twins = _run(_config(lifecycle={"failure_rate": 0}), _polls(12))
    again: list[tuple[Any, ...]] = [("poll", 0, "alice", "")] * 3
    repeat = _run(_config(lifecycle={"failure_rate": 0}), _polls(12) + again)
    assert repeat.hits - twins.hits == 3  # the same answer again, three times: from the memo


def test_a_cancel_or_a_reschedule_is_seen_at_the_next_poll() -> None:
    config = _config(lifecycle={"queue_delay": "fixed(1)", "run_time": "fixed(60)",
                                "concurrency": 1, "failure_rate": 0},
                     therouter={"cancel_running": True}, runcomfy={})
    provider = PROVIDERS[-1]
    steps: list[tuple[Any, ...]] = [
        *[("submit", provider, "alice", "") for _ in range(3)], ("advance", 2),
        ("poll", 2, "alice", ""), ("poll", 2, "alice", ""), ("cancel", 1, "alice", ""),
        ("poll", 2, "alice", ""), ("poll", 1, "alice", ""),
    ]
    twins = _run(config, steps)
    assert twins.hits == 1  # the second poll only: the cancel changed job 2's position
    entries = twins.apps[0].state.wanmock.journal.entries
    polls = [(e.phase, e.job_id) for e in entries if e.operation == "status"]
    assert [phase for phase, _ in polls] == ["queued", "queued", "queued", "cancelled"]


def test_sync_mode_submits_and_faults_take_the_same_path() -> None:
    async def play() -> None:
        twins = Twins(_config(lifecycle={"queue_delay": "fixed(0)", "run_time": "fixed(0)",
                                         "failure_rate": 0}))
        for provider in PROVIDERS:
            await twins.submit(provider, "alice")
        for app in twins.apps:
            script = {"responses": ["http-503", "pass"], "operation": "status"}
            assert (await httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                            base_url="http://127.0.0.1:8000").post(
                "/__admin/script", json=script)).status_code == 200
        provider, job = twins.jobs[0]
        status = FACTS[provider].status
        for expected in (503, 200, 200):
            answer = await twins.request(status.method, status.url_path(job), "alice",
                                         params=status.query)
            assert answer.status_code == expected
        await twins.close()
        twins.check_journals()

    asyncio.run(play())
