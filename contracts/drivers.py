"""A minimal async driver that speaks any provider's API over any :class:`httpx.AsyncClient`.

The driver is generic: everything provider-specific — paths, body shape, where the id and the
status word sit, what the words mean — comes from the provider module's
:class:`~wanmock.server.dialects.ClientFacts`. It knows nothing about the fake: the contract
suite, the tests and the load tester use it against the fake or a real base URL alike.

>>> sorted(DRIVERS)
['dashscope', 'runcomfy', 'therouter']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import httpx

from wanmock.server.dialects import ClientFacts, DialectRegistry, Endpoint, default_registry
from wanmock.server.vocab import Phase

__all__ = ["DRIVERS", "Driver", "drivers"]


class Driver:
    """Submit / status / result / cancel for one provider, returning raw responses."""

    def __init__(self, http: httpx.AsyncClient, *, provider: str, facts: ClientFacts) -> None:
        self.http = http
        self.provider = provider
        self.facts = facts

    @property
    def model(self) -> str:
        return self.facts.model

    @property
    def phases(self) -> Mapping[str, Phase]:
        """Status word -> neutral phase."""
        return self.facts.phases

    @property
    def urls_in_status(self) -> bool:
        """Whether a succeeded status answer already carries the image URLs."""
        return self.facts.result is None

    def valid_body(self, prompt: str = "a lighthouse at dusk", **overrides: Any) -> dict[str, Any]:
        """A minimal valid submit body (top-level keys of ``overrides`` replace its own)."""
        return {**self.facts.body(prompt), **overrides}

    def seeded(self, seed: int, prompt: str = "a lighthouse at dusk") -> dict[str, Any]:
        """A minimal valid body asking for ``seed`` (wherever the provider keeps it)."""
        body = copy.deepcopy(self.valid_body(prompt))
        where = body
        for name in self.facts.seed_field[:-1]:
            where = where.setdefault(name, {})
        where[self.facts.seed_field[-1]] = seed
        return body

    def body_without_prompt(self) -> dict[str, Any]:
        """A valid body with its prompt removed (the contract's "invalid body" probe)."""
        body = copy.deepcopy(self.valid_body())
        where = body
        for name in self.facts.prompt_field[:-1]:
            where = where[name]
        del where[self.facts.prompt_field[-1]]
        return body

    def _send(self, endpoint: Endpoint, job_id: str = "", **kw: Any
              ) -> Any:
        headers = {**endpoint.headers, **kw.pop("headers", {})}
        params = {**endpoint.query, **kw.pop("params", {})}
        return self.http.request(endpoint.method, endpoint.url_path(job_id), params=params,
                                 headers=headers, **kw)

    async def submit(self, body: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        response: httpx.Response = await self._send(
            self.facts.submit, json=self.valid_body() if body is None else dict(body), **kw)
        return response

    def job_id(self, submitted: httpx.Response) -> str:
        """The job id in a submit answer (``KeyError``/``ValueError`` if there is none)."""
        return self.facts.job_id(submitted.json())

    async def status(self, job_id: str) -> httpx.Response:
        response: httpx.Response = await self._send(self.facts.status, job_id)
        return response

    async def status_without_key(self, job_id: str) -> httpx.Response:
        """The status endpoint asked with no ``Authorization`` header at all (the client's
        default key removed, not blanked)."""
        endpoint = self.facts.status
        request = self.http.build_request(endpoint.method, endpoint.url_path(job_id),
                                          params=endpoint.query, headers=endpoint.headers)
        request.headers.pop("authorization", None)
        response: httpx.Response = await self.http.send(request)
        return response

    async def result(self, job_id: str) -> httpx.Response:
        """The result endpoint's answer (the status answer where results are in it)."""
        endpoint = self.facts.result or self.facts.status
        response: httpx.Response = await self._send(endpoint, job_id)
        return response

    async def cancel(self, job_id: str) -> httpx.Response:
        response: httpx.Response = await self._send(self.facts.cancel, job_id)
        return response

    def phase(self, status: httpx.Response) -> Phase:
        """The neutral phase in a status response; ``ValueError`` names an unknown word."""
        try:
            body = status.json()
        except ValueError:
            raise ValueError(f"no status in {status.text[:120]!r}") from None
        try:
            return self.facts.phase(body)
        except ValueError as exc:
            raise ValueError(f"{exc} ({self.provider})") from None

    def image_urls(self, result: httpx.Response) -> list[str]:
        """Artifact URLs in a finished job's result (``KeyError`` if there are none)."""
        return self.facts.image_urls(result.json())

    def cancelled(self, answer: httpx.Response) -> bool:
        """Whether a cancel answer says the job was cancelled."""
        try:
            return answer.status_code < 300 and self.facts.cancelled(answer.json())
        except (ValueError, KeyError, TypeError, AttributeError):
            return False


def drivers(registry: DialectRegistry | None = None
            ) -> dict[str, Callable[[httpx.AsyncClient], Driver]]:
    """A driver factory per provider of ``registry`` (the built-in ones by default)."""
    return {cls.name: partial(Driver, provider=cls.name, facts=cls.client)
            for cls in (registry or default_registry())}


#: Driver factory by provider name: ``DRIVERS["therouter"](http)``.
DRIVERS: Mapping[str, Callable[[httpx.AsyncClient], Driver]] = drivers()
