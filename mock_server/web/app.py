"""The app factory: ``create_app(config, *, clock=None, state=None)``.

Provider requests take the raw-ASGI edge (``edge.py``); the admin API, ``/openapi.json`` and the
dashboard are a small Starlette app behind it. No global state: everything hangs off one
:class:`~wanmock.server.web.runtime.Runtime`, reachable as ``app.state.wanmock``.

>>> from wanmock.server import FakeClock
>>> app = create_app(clock=FakeClock())
>>> sorted(app.state.wanmock.dialects)
['dashscope', 'runcomfy', 'therouter']
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..clock import Clock, FakeClock, RealClock
from ..config import Config
from ..dialects import DialectRegistry, default_registry
from ..errors import ConfigError
from ..journal import Journal
from ..state import MemoryState, SimState
from . import gcpolicy
from .admin import ADMIN_PREFIX, admin_routes
from .admin import wrap as admin_wrap
from .edge import Edge
from .flows import FLOWS
from .openapi import openapi_document
from .runtime import Runtime

__all__ = ["WanmockApp", "create_app", "make_state"]


class WanmockApp(Starlette):
    """Starlette (admin, OpenAPI, dashboard) behind the provider edge."""

    edge: Edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.edge(scope, receive, send)


def make_state(config: Config, clock: Clock | None = None) -> SimState:
    """The simulation state ``config.server.state`` names (in-process memory by default)."""
    server = config.server
    journal = Journal(capacity=config.journal.capacity, max_jobs=config.journal.max_jobs,
                      max_keys=config.journal.max_keys)
    signing_key = server.signing_key.encode() if server.signing_key else None
    if server.state == "memory":
        if clock is None:
            clock = FakeClock() if server.fake_clock else RealClock(server.time_scale)
        return MemoryState(clock, seed=server.seed, signing_key=signing_key,
                           max_jobs=config.lifecycle.max_jobs, journal=journal)
    try:  # imported only when asked for: redis-py is an extra
        redis = importlib.import_module("..state.redis", __package__)
    except ImportError as exc:
        raise ConfigError(f"server.state = {server.state!r} needs redis-py: "
                          f"pip install 'redis>=5' 'hiredis>=2.3' ({exc})") from None
    shared: SimState = redis.RedisState.from_config(config, journal=journal)
    return shared


def create_app(
    config: Config | None = None,
    *,
    clock: Clock | None = None,
    state: SimState | None = None,
    registry: DialectRegistry | None = None,
) -> WanmockApp:
    """Build the fake of every registered provider.

    ``state`` defaults to the one ``config.server.state`` names: in memory, on ``clock`` (a
    :class:`FakeClock` if ``config.server.fake_clock`` else a :class:`RealClock` at
    ``config.server.time_scale``). With no arguments at all (``uvicorn --factory
    wanmock.server:create_app``) the config comes from the environment (:meth:`Config.from_env`).
    """
    if config is None:
        config = Config.from_env() if clock is None and state is None else Config()
    if state is None:
        state = make_state(config, clock)
    elif clock is not None and clock is not state.clock:
        raise ConfigError("create_app: pass a clock or a state, not both (the state has one)")
    dialects = (registry or default_registry()).build(config)
    rt = Runtime(config=config, state=state, dialects=dialects)
    document = openapi_document(dialects.values())
    routes: list[BaseRoute] = [Route("/openapi.json", partial(_openapi, document),
                                     methods=["GET"])]
    for path, methods, handler in admin_routes():
        routes.append(Route(ADMIN_PREFIX + path, admin_wrap(rt, handler), methods=methods))
    app = WanmockApp(
        routes=routes,
        lifespan=partial(_lifespan, rt),
        exception_handlers={HTTPException: _not_here},
    )
    app.router.redirect_slashes = False  # a provider path with a slash added is a 404, not 307
    app.state.wanmock = rt
    app.edge = Edge(rt, partial(Starlette.__call__, app), FLOWS)
    return app


@asynccontextmanager
async def _lifespan(rt: Runtime, app: Starlette) -> AsyncIterator[None]:
    """While served: connect the state, and the collector policy of ``server.gc_freeze``."""
    policy = rt.config.server.gc_freeze and not gcpolicy.installed()
    if policy:
        gcpolicy.install()
    try:
        yield
    finally:
        if policy:
            gcpolicy.uninstall()
        await rt.state.close()


async def _openapi(document: dict[str, Any], request: Request) -> Response:
    return JSONResponse(document)


async def _not_here(request: Request, exc: Exception) -> Response:
    """Paths no provider owns: a plain JSON 404/405 pointing at the API description."""
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path[:200]
    what = "no endpoint" if exc.status_code == 404 else f"{method} is not allowed"
    return JSONResponse({"error": f"{what} at {method} {path}; every endpoint is listed in "
                                  "/openapi.json, the admin API under /__admin"},
                        exc.status_code, headers=exc.headers)
