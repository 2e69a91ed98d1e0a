"""Reference clients for TheRouter, RunComfy and DashScope, handling all the providers can do.

They submit, poll every ``poll_interval`` seconds, honour ``Retry-After`` on 429/503, back off
exponentially on other 5xx, dropped connections and unreadable bodies, give up after ``deadline``
seconds of waiting, raise :class:`GenerationFailed` on failed/cancelled/expired jobs, and return
the image URLs. Use them as a template; ``wanmock`` checks them with ``check_client``.

>>> urls = generate_therouter("http://127.0.0.1:8000", "sk-test", "a fox")   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["DashScopeClient", "GenerationFailed", "RunComfyClient", "TheRouterClient",
           "generate_dashscope", "generate_runcomfy", "generate_therouter"]


class GenerationFailed(RuntimeError):
    """The provider reported the job failed, was cancelled or expired, or we gave up."""


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class PollingClient:
    """The provider-independent part: calls with retries, and the polling loop."""

    terminal_failures: frozenset[str] = frozenset()
    success: str = ""

    def __init__(self, base_url: str, api_key: str, *, poll_interval: float = 5.0,
                 deadline: float = 600.0, max_attempts: int = 8,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30,
                                 headers={"authorization": f"Bearer {api_key}"})
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.max_attempts = max_attempts
        # ``time.sleep`` looked up when called, not bound here: a harness that simulates time
        # (``check_client``) replaces it while the client runs.
        self.sleep = sleep or _sleep
        self.waited = 0.0  # seconds slept; the deadline counts waiting, not wall time

    def __enter__(self) -> PollingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def wait(self, seconds: float) -> None:
        self.sleep(seconds)
        self.waited += seconds

    def retry_delay(self, response: httpx.Response | None, attempt: int) -> float | None:
        """Seconds to wait before retrying, or ``None`` if the answer is final."""
        if response is None:  # connection dropped or body unreadable
            return min(2.0**attempt, 30.0)
        if response.status_code in (429, 503) and "retry-after" in response.headers:
            return float(response.headers["retry-after"])
        if response.status_code == 429 or response.status_code >= 500:
            return min(2.0**attempt, 30.0)
        return None

    def call(self, method: str, url: str, **kw: Any) -> Any:
        """One API call with retries; the parsed JSON body of the final answer."""
        for attempt in range(self.max_attempts):
            response: httpx.Response | None = None
            try:
                response = self.http.request(method, url, **kw)
                delay = self.retry_delay(response, attempt)
                if delay is None:
                    if response.status_code >= 400:
                        raise GenerationFailed(f"{method} {url}: {response.status_code} "
                                               f"{response.text[:200]}")
                    return response.json()
            except (httpx.TransportError, ValueError):
                delay = min(2.0**attempt, 30.0)  # connection dropped or body unreadable
            self.wait(delay)
        raise GenerationFailed(f"{method} {url}: no usable answer after {self.max_attempts} tries")

    def generate(self, prompt: str, **params: Any) -> list[str]:
        job_id = self.submit(prompt, **params)
        while True:
            status = self.status(job_id)
            if status == self.success:
                return self.urls(job_id)
            if status in self.terminal_failures:
                raise GenerationFailed(f"job {job_id} ended {status}")
            if self.waited >= self.deadline:
                raise GenerationFailed(f"job {job_id} still {status} after {self.deadline:g} s")
            self.wait(self.poll_interval)

    def submit(self, prompt: str, **params: Any) -> str:
        raise NotImplementedError

    def status(self, job_id: str) -> str:
        raise NotImplementedError

    def urls(self, job_id: str) -> list[str]:
        raise NotImplementedError


class TheRouterClient(PollingClient):
    terminal_failures = frozenset({"failed", "cancelled", "expired"})
    success = "succeeded"

    def submit(self, prompt: str, **params: Any) -> str:
        body = {"model": "wan/wan2.2-t2i-flash", "prompt": prompt, **params}
        return str(self.call("POST", "/v1/images/generations", params={"async": "true"},
                             json=body)["id"])

    def status(self, job_id: str) -> str:
        self._job = self.call("GET", f"/v1/jobs/{job_id}")
        return str(self._job["status"])

    def urls(self, job_id: str) -> list[str]:
        return list(self._job["unsigned_urls"])


class RunComfyClient(PollingClient):
    terminal_failures = frozenset({"failed", "cancelled"})
    success = "completed"
    model = "wan-ai/wan-2-2/flash/text-to-image"

    def submit(self, prompt: str, **params: Any) -> str:
        return str(self.call("POST", f"/v1/models/{self.model}",
                             json={"prompt": prompt, **params})["request_id"])

    def status(self, job_id: str) -> str:
        return str(self.call("GET", f"/v1/requests/{job_id}/status")["status"])

    def urls(self, job_id: str) -> list[str]:
        result = self.call("GET", f"/v1/requests/{job_id}/result")
        if result.get("status") != "succeeded":
            raise GenerationFailed(f"request {job_id} result is {result.get('status')}")
        output = result["output"]
        return [output["image"]] if "image" in output else list(output["images"])


class DashScopeClient(PollingClient):
    """DashScope over plain HTTP (its official SDK works too: see the SDK tests)."""

    terminal_failures = frozenset({"FAILED", "CANCELED", "UNKNOWN"})
    success = "SUCCEEDED"
    model = "wan2.2-t2i-flash"

    def submit(self, prompt: str, **params: Any) -> str:
        body = {"model": self.model, "input": {"prompt": prompt}, "parameters": {"n": 1, **params}}
        answer = self.call("POST", "/api/v1/services/aigc/text2image/image-synthesis",
                           headers={"X-DashScope-Async": "enable"}, json=body)
        return str(answer["output"]["task_id"])

    def status(self, job_id: str) -> str:
        self._task = self.call("GET", f"/api/v1/tasks/{job_id}")
        return str(self._task["output"]["task_status"])

    def urls(self, job_id: str) -> list[str]:
        return [r["url"] for r in self._task["output"]["results"] if "url" in r]


def generate_therouter(base_url: str, api_key: str, prompt: str, *,
                       sleep: Callable[[float], None] | None = None, **params: Any) -> list[str]:
    """TheRouter: submit, poll, return the image URLs (raises :class:`GenerationFailed`)."""
    with TheRouterClient(base_url, api_key, sleep=sleep) as client:
        return client.generate(prompt, **params)


def generate_runcomfy(base_url: str, api_key: str, prompt: str, *,
                      sleep: Callable[[float], None] | None = None, **params: Any) -> list[str]:
    """RunComfy: submit, poll, return the image URLs (raises :class:`GenerationFailed`)."""
    with RunComfyClient(base_url, api_key, sleep=sleep) as client:
        return client.generate(prompt, **params)


def generate_dashscope(base_url: str, api_key: str, prompt: str, *,
                       sleep: Callable[[float], None] | None = None, **params: Any) -> list[str]:
    """DashScope: create a task, poll it, return the image URLs (raises
    :class:`GenerationFailed`)."""
    with DashScopeClient(base_url, api_key, sleep=sleep) as client:
        return client.generate(prompt, **params)
