"""Minimal async drivers that speak each provider's API over any :class:`httpx.AsyncClient`.

A driver knows paths, body shapes and status words — nothing about the fake. The contract suite,
the tests and the load tester use them against the fake or a real base URL alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from wanmock.server.vocab import Phase

__all__ = ["DRIVERS", "Driver", "RunComfyDriver", "TheRouterDriver"]


class Driver:
    """Submit / status / result / cancel for one provider, returning raw responses."""

    provider: ClassVar[str]
    model: ClassVar[str]
    #: Status word on the status endpoint -> neutral phase.
    phases: ClassVar[Mapping[str, Phase]]
    #: Whether a succeeded status answer already carries the image URLs.
    urls_in_status: ClassVar[bool] = False

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    def valid_body(self, **overrides: Any) -> dict[str, Any]:
        """A minimal valid submit body."""
        raise NotImplementedError

    async def submit(self, body: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        raise NotImplementedError

    @classmethod
    def job_id(cls, submitted: httpx.Response) -> str:
        raise NotImplementedError

    async def status(self, job_id: str) -> httpx.Response:
        raise NotImplementedError

    async def result(self, job_id: str) -> httpx.Response:
        raise NotImplementedError

    async def cancel(self, job_id: str) -> httpx.Response:
        raise NotImplementedError

    @classmethod
    def phase(cls, status: httpx.Response) -> Phase:
        """The neutral phase in a status response; ``ValueError`` names an unknown word."""
        try:
            word = status.json()["status"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"no status in {status.text[:120]!r}") from None
        if word not in cls.phases:
            raise ValueError(f"unknown status word {word!r}; {cls.provider} uses "
                             f"{', '.join(cls.phases)}")
        return cls.phases[word]

    @classmethod
    def image_urls(cls, result: httpx.Response) -> list[str]:
        """Artifact URLs in a finished job's result."""
        raise NotImplementedError


class TheRouterDriver(Driver):
    provider = "therouter"
    model = "wan/wan2.2-t2i-flash"
    urls_in_status = True
    phases: ClassVar[Mapping[str, Phase]] = {
        "queued": Phase.QUEUED,
        "in_progress": Phase.RUNNING,
        "succeeded": Phase.SUCCEEDED,
        "failed": Phase.FAILED,
        "cancelled": Phase.CANCELLED,
        "expired": Phase.EXPIRED,
    }

    def valid_body(self, **overrides: Any) -> dict[str, Any]:
        return {"model": self.model, "prompt": "a lighthouse at dusk", **overrides}

    async def submit(self, body: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return await self.http.post("/v1/images/generations", params={"async": "true"},
                                     json=self.valid_body() if body is None else dict(body), **kw)

    @classmethod
    def job_id(cls, submitted: httpx.Response) -> str:
        return str(submitted.json()["id"])

    async def status(self, job_id: str) -> httpx.Response:
        return await self.http.get(f"/v1/jobs/{job_id}")

    result = status

    async def cancel(self, job_id: str) -> httpx.Response:
        return await self.http.post(f"/v1/jobs/{job_id}/cancel")

    @classmethod
    def image_urls(cls, result: httpx.Response) -> list[str]:
        return list(result.json()["unsigned_urls"])


class RunComfyDriver(Driver):
    provider = "runcomfy"
    model = "wan-ai/wan-2-2/flash/text-to-image"
    phases: ClassVar[Mapping[str, Phase]] = {
        "in_queue": Phase.QUEUED,
        "in_progress": Phase.RUNNING,
        "completed": Phase.SUCCEEDED,
        "failed": Phase.FAILED,
        "cancelled": Phase.CANCELLED,
    }

    def valid_body(self, **overrides: Any) -> dict[str, Any]:
        return {"prompt": "a lighthouse at dusk", **overrides}

    async def submit(self, body: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return await self.http.post(f"/v1/models/{self.model}",
                                    json=self.valid_body() if body is None else dict(body), **kw)

    @classmethod
    def job_id(cls, submitted: httpx.Response) -> str:
        return str(submitted.json()["request_id"])

    async def status(self, job_id: str) -> httpx.Response:
        return await self.http.get(f"/v1/requests/{job_id}/status")

    async def result(self, job_id: str) -> httpx.Response:
        return await self.http.get(f"/v1/requests/{job_id}/result")

    async def cancel(self, job_id: str) -> httpx.Response:
        return await self.http.post(f"/v1/requests/{job_id}/cancel")

    @classmethod
    def image_urls(cls, result: httpx.Response) -> list[str]:
        output = result.json()["output"]
        return [output["image"]] if "image" in output else list(output["images"])


#: Driver class by provider name.
DRIVERS: dict[str, type[Driver]] = {d.provider: d for d in (TheRouterDriver, RunComfyDriver)}
