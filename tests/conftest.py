"""Shared fixtures: a fake clock, an app factory, and API clients that check every response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from starlette.applications import Starlette

from wanmock.contracts.drivers import DRIVERS, Driver
from wanmock.contracts.responses import response_problems
from wanmock.server import Config, FakeClock, create_app

#: ``make test``: the same examples every run (derandomize), so its verdict on a commit is
#: reproducible; ``make test-props`` (``ci``) draws 400 new examples per test each run to explore.
settings.register_profile("dev", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])

BASE_URL = "http://127.0.0.1:8000"
PROVIDERS = sorted(DRIVERS)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(clock: FakeClock) -> Callable[..., Starlette]:
    """``make_app(lifecycle={...}, therouter={...})``: a fresh app on the test's fake clock."""

    def factory(**sections: dict[str, Any]) -> Starlette:
        server = {"seed": 1234, **sections.pop("server", {})}
        lifecycle = {"queue_delay": "fixed(2)", "run_time": "fixed(60)",
                     **sections.pop("lifecycle", {})}
        config = Config().replace(server=server, lifecycle=lifecycle, **sections)
        return create_app(config, clock=clock)

    return factory


class Checked(httpx.AsyncClient):
    """An in-process client whose every provider response is validated against ``schemas/``."""

    def __init__(self, app: Starlette, key: str | None = "test-key", *, checked: bool = True,
                 **kw: Any) -> None:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        hooks = {"response": [self._check]} if checked else {}
        super().__init__(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                         headers=headers, event_hooks=hooks, **kw)

    @staticmethod
    async def _check(response: httpx.Response) -> None:
        await response.aread()
        problems = response_problems(response)
        assert not problems, "response breaks the contract:\n" + "\n".join(map(str, problems))


@pytest.fixture
async def connect(make_app: Callable[..., Starlette]) -> AsyncIterator[Callable[..., Checked]]:
    """``connect(app=None, key="test-key", checked=True)``: a client, closed after the test.

    ``checked=False`` skips the schema check, for tests that corrupt responses on purpose."""
    opened: list[Checked] = []

    def factory(app: Starlette | None = None, key: str | None = "test-key",
                checked: bool = True) -> Checked:
        client = Checked(app or make_app(), key, checked=checked)
        opened.append(client)
        return client

    yield factory
    for client in opened:
        await client.aclose()


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app()


@pytest.fixture
def http(connect: Callable[..., Checked], app: Starlette) -> Checked:
    return connect(app)


@pytest.fixture(params=PROVIDERS)
def driver(request: pytest.FixtureRequest, http: Checked) -> Driver:
    """A driver for each provider, talking to the default app."""
    return DRIVERS[request.param](http)
