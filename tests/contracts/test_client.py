"""check_client: the reference clients pass the whole matrix; broken clients are caught."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from wanmock.contracts.client import SCENARIOS, check_client
from wanmock.examples.reference_clients import (
    GenerationFailed,
    RunComfyClient,
    TheRouterClient,
    generate_runcomfy,
    generate_therouter,
)


@pytest.mark.parametrize(("provider", "generate"), [("therouter", generate_therouter),
                                                    ("runcomfy", generate_runcomfy)])
def test_reference_clients_pass_the_whole_matrix(provider: str, generate: Any) -> None:
    report = check_client(generate, provider=provider)
    assert report.ok, report.render()
    assert {r.scenario.name for r in report.results} == {s.name for s in SCENARIOS}
    assert report.result("stuck").outcome.startswith("raised GenerationFailed")


def scenario(name: str) -> list[Any]:
    return [s for s in SCENARIOS if s.name == name]


def run_broken(cls: type, name: str, provider: str = "therouter", **overrides: Any):  # type: ignore[no-untyped-def]
    def generate(base_url: str, api_key: str, prompt: str, *, sleep: Any) -> list[str]:
        client = cls(base_url, api_key, sleep=sleep, **overrides)
        with client:
            return client.generate(prompt)  # type: ignore[no-any-return]

    return check_client(generate, provider=provider, scenarios=scenario(name)).results[0]


class NoBackoff(TheRouterClient):
    def retry_delay(self, response: httpx.Response | None, attempt: int) -> float | None:
        delay = super().retry_delay(response, attempt)
        return None if delay is None else 0.01


class IgnoresRetryAfter(TheRouterClient):
    def retry_delay(self, response: httpx.Response | None, attempt: int) -> float | None:
        delay = super().retry_delay(response, attempt)
        return None if delay is None else 1.0


class PollsAfterTerminal(RunComfyClient):
    def generate(self, prompt: str, **params: Any) -> list[str]:
        urls = super().generate(prompt, **params)
        job = self.http.get(urls[0]).url.path.split("/")[3]
        for _ in range(3):
            self.call("GET", f"/v1/requests/{job}/status")
        return urls


class IgnoresFailed(TheRouterClient):
    terminal_failures = frozenset()


class WrongStatusWord(TheRouterClient):
    success = "completed"  # RunComfy's word, not TheRouter's


def test_no_backoff_is_caught() -> None:
    result = run_broken(NoBackoff, "server-errors")
    assert not result.passed
    assert any("back off at least 1 s" in p for p in result.problems)


def test_ignoring_retry_after_is_caught() -> None:
    result = run_broken(IgnoresRetryAfter, "rate-limited")
    assert any("ignored Retry-After" in p for p in result.problems)


def test_polling_after_terminal_is_caught() -> None:
    result = run_broken(PollsAfterTerminal, "success", provider="runcomfy")
    assert any("kept polling after a terminal status" in p for p in result.problems)


def test_ignoring_failed_is_caught() -> None:
    result = run_broken(IgnoresFailed, "failure")
    assert any("kept polling after a terminal status" in p for p in result.problems)


def test_no_timeout_is_caught() -> None:
    result = run_broken(TheRouterClient, "stuck", deadline=float("inf"))
    assert result.outcome == "hung"
    assert any("never returned" in p for p in result.problems)
    assert any("give up by t+3600 s" in p for p in result.problems)


def test_wrong_status_word_is_caught() -> None:
    result = run_broken(WrongStatusWord, "success")
    assert result.outcome.startswith("raised GenerationFailed")
    assert any("expected a result" in p for p in result.problems)
    assert any("kept polling after a terminal status" in p for p in result.problems)


def test_async_clients_are_supported() -> None:
    async def generate(base_url: str, api_key: str, prompt: str) -> str:
        async with httpx.AsyncClient(base_url=base_url,
                                     headers={"authorization": f"Bearer {api_key}"}) as http:
            job = (await http.post("/v1/models/wan-ai/wan-2-2/flash/text-to-image",
                                   json={"prompt": prompt})).json()["request_id"]
            while True:
                status = (await http.get(f"/v1/requests/{job}/status")).json()["status"]
                if status == "completed":
                    result = (await http.get(f"/v1/requests/{job}/result")).json()
                    return str(result["output"]["image"])
                if status in ("failed", "cancelled"):
                    raise GenerationFailed(status)
                await asyncio.sleep(5)  # advances the fake clock, not real time

    report = check_client(generate, provider="runcomfy",
                          scenarios=scenario("success") + scenario("failure"))
    assert report.ok, report.render()
