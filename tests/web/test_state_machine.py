"""Stateful fuzzing of each provider's HTTP surface: submit / poll / result / cancel / download /
advance, with several API keys. Every response is schema-checked; the journal counts what was
sent; no key ever sees another key's job; status never goes backwards."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from tests.conftest import Checked
from wanmock.contracts.drivers import DRIVERS
from wanmock.server import Config, FakeClock, Phase, create_app
from wanmock.server.dialects import default_registry

KEYS = ("key-a", "key-b", "key-c")


class ProviderMachine(RuleBasedStateMachine):
    provider = ""
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        config = Config().replace(server={"seed": 3},
                                  lifecycle={"failure_rate": 0.3, "concurrency": 1})
        self.app = create_app(config, clock=self.clock)
        self.facts = default_registry().get(self.provider).client
        self.sent = 0
        self.owner: dict[str, str] = {}
        self.seen: dict[str, Phase] = {}

    def call(self, key: str, action: str, *args: Any, **kw: Any) -> httpx.Response:
        """One driver call as ``key``, in-process; the response is schema-checked."""

        async def go() -> httpx.Response:
            async with Checked(self.app, key) as http:
                driver = DRIVERS[self.provider](http)
                if action == "download":
                    return await http.get(args[0])
                return await getattr(driver, action)(*args, **kw)  # type: ignore[no-any-return]

        self.sent += 1
        response = asyncio.run(go())
        assert response.status_code < 500, response.text
        return response

    @rule(target=jobs, key=st.sampled_from(KEYS), scenario=st.sampled_from(
        ["", "fail-after-2-polls", "stuck", "queue-5", "cancel-after-30s", "expire-after-400s"]))
    def submit(self, key: str, scenario: str) -> str:
        headers = {"X-Wanmock-Scenario": scenario} if scenario else {}
        answer = self.call(key, "submit", None, headers=headers)
        assert answer.status_code in (200, 202)
        job = self.facts.job_id(answer.json())
        self.owner[job] = key
        return job

    @rule(job=jobs, key=st.sampled_from(KEYS))
    def poll(self, job: str, key: str) -> None:
        answer = self.call(key, "status", job)
        if key != self.owner[job]:
            assert answer.status_code in (403, 404)  # another key's job is never shown
            assert "lighthouse" not in answer.text  # nor anything it holds
            return
        if answer.status_code == 404:  # RunComfy after expiry, or evicted
            self.seen[job] = Phase.EXPIRED
            return
        phase = self.facts.phase(answer.json())
        before = self.seen.get(job)
        if before is not None:
            assert phase.rank >= before.rank, f"{before} -> {phase}"
            if before.terminal and phase is not Phase.EXPIRED:
                assert phase is before
        self.seen[job] = phase

    def succeeded(self, job: str) -> httpx.Response | None:
        """The result answer of a job that has succeeded, else ``None``."""
        status = self.call(self.owner[job], "status", job)
        if status.status_code != 200 or self.facts.phase(status.json()) is not Phase.SUCCEEDED:
            return None
        answer = self.call(self.owner[job], "result", job)
        assert answer.status_code == 200, answer.text
        return answer

    @rule(job=jobs)
    def result(self, job: str) -> None:
        answer = self.succeeded(job)
        if answer is not None:
            assert self.facts.image_urls(answer.json())

    @rule(job=jobs)
    def cancel(self, job: str) -> None:
        self.call(self.owner[job], "cancel", job)

    @rule(job=jobs)
    def download(self, job: str) -> None:
        answer = self.succeeded(job)
        if answer is not None:
            url = self.facts.image_urls(answer.json())[0]
            image = self.call(self.owner[job], "download", url)
            assert image.status_code == 200 and image.content[:4] == b"\x89PNG"

    @rule(seconds=st.floats(0, 3000))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def journal_counts_what_was_sent(self) -> None:
        assert self.app.state.wanmock.journal.total == self.sent



@pytest.mark.parametrize("provider", sorted(DRIVERS))
def test_provider_state_machine(provider: str) -> None:
    machine = type(f"{provider}Machine", (ProviderMachine,), {"provider": provider})
    run = settings(stateful_step_count=30, deadline=None)(machine).TestCase
    run().runTest()
