"""The wanmock pytest plugin (entry point ``pytest11: wanmock``): a fake per test.

Fixtures (all fresh per test):

* ``wanmock_clock`` — the :class:`~wanmock.server.FakeClock`; ``wanmock_clock.advance(60)``.
* ``wanmock_config`` — the :class:`~wanmock.server.Config`; override it, or use
  ``@pytest.mark.wanmock(preset="flaky", seed=3, lifecycle={...})``.
* ``wanmock_app`` — the in-process ASGI app (use with ``httpx.ASGITransport``).
* ``wanmock_server`` — the same app on a real uvicorn socket; ``wanmock_server.url``.
* ``wanmock_base_url`` — that URL, for clients that take a base URL.
* ``wanmock_journal`` — what clients did; judge it with :mod:`wanmock.contracts.assertions`.
* ``wanmock_faults`` — script the next responses: ``wanmock_faults.script(["http-503"])``.

Tests marked ``smoke`` talk to the real providers: they run only when selected
(``pytest -m smoke``) and the provider's key is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported lazily: the plugin loads on every pytest run
    from starlette.applications import Starlette

    from wanmock.server import Config, FakeClock
    from wanmock.server.journal import Journal
    from wanmock.server.web.serve import LiveServer

__all__ = ["FaultScripter"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wanmock(preset=None, seed=None, **sections): configure the wanmock fake")
    config.addinivalue_line(
        "markers", "smoke: talks to the real provider APIs (opt-in: pytest -m smoke, needs a key)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "smoke" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="real-API smoke test: opt-in with `pytest -m smoke` and "
                                   "THE_ROUTER_API_KEY / RUNCOMFY_API_TOKEN (costs $0.048/image)")
    for item in items:
        if item.get_closest_marker("smoke"):
            item.add_marker(skip)


@pytest.fixture
def wanmock_clock() -> FakeClock:
    """The fake clock of this test's fake: ``wanmock_clock.advance(60)``."""
    from wanmock.server import FakeClock

    return FakeClock()


@pytest.fixture
def wanmock_config(request: pytest.FixtureRequest) -> Config:
    """The fake's config; set with ``@pytest.mark.wanmock(preset=..., seed=..., ...)``."""
    from wanmock.server import Config

    marker = request.node.get_closest_marker("wanmock")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    preset = options.pop("preset", None)
    server = {"seed": options.pop("seed", 0), **options.pop("server", {})}
    config = Config().with_preset(preset) if preset else Config()
    return config.replace(server=server, **options)


@pytest.fixture
def wanmock_app(wanmock_config: Config, wanmock_clock: FakeClock) -> Starlette:
    """The fake as an in-process ASGI app (for ``httpx.ASGITransport``)."""
    from wanmock.server import create_app

    return create_app(wanmock_config, clock=wanmock_clock)


@pytest.fixture
def wanmock_server(wanmock_app: Starlette) -> Iterator[LiveServer]:
    """The fake on a real uvicorn socket (free loopback port), stopped after the test."""
    from wanmock.server.web.serve import LiveServer

    with LiveServer(wanmock_app) as server:
        yield server


@pytest.fixture
def wanmock_base_url(wanmock_server: LiveServer) -> str:
    """Base URL of the live fake, for clients that take one."""
    return wanmock_server.url


@pytest.fixture
def wanmock_journal(wanmock_app: Starlette) -> Journal:
    """What clients did to the fake; judge it with ``wanmock.contracts.assertions``."""
    return wanmock_app.state.wanmock.journal  # type: ignore[no-any-return]


class FaultScripter:
    """Script faults and switch presets on the fake of the current test."""

    def __init__(self, app: Starlette) -> None:
        self._rt = app.state.wanmock

    def script(self, faults: list[str], *, provider: str | None = None,
               operation: str | None = None, retry_after: float = 5.0) -> None:
        """The next responses (of one endpoint, if given) get these faults, in order."""
        from wanmock.server.faults import ScriptedFault, parse_fault
        from wanmock.server.vocab import Operation, parse_enum

        op = parse_enum(Operation, operation, name="operation") if operation else None
        items = [ScriptedFault(parse_fault(f, name="fault"), retry_after) for f in faults]
        from wanmock.server.state import at_once

        at_once(self._rt.state.script(items, provider=provider, operation=op))

    def preset(self, name: str) -> None:
        """Switch to a named preset for jobs submitted from now on."""
        from wanmock.server.state import at_once

        self._rt.use_preset(name)
        at_once(self._rt.state.set_preset(name))


@pytest.fixture
def wanmock_faults(wanmock_app: Starlette) -> FaultScripter:
    """Script faults and switch presets: ``wanmock_faults.script(["http-503"])``."""
    return FaultScripter(wanmock_app)
