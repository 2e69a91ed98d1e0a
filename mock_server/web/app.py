"""The app factory: ``create_app(config, *, clock=None, store=None)``.

Routes are a readable table built from the dialect registry; domain errors become provider-shaped
responses in one exception-handler table; admin routes live under ``/__admin``.

>>> from wanmock.server import FakeClock
>>> app = create_app(clock=FakeClock())
>>> sorted(app.state.wanmock.dialects)
['runcomfy', 'therouter']
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from ..clock import Clock, FakeClock, RealClock
from ..config import Config
from ..dialects import Dialect, DialectRegistry, default_registry
from ..engine import Engine
from ..errors import ApiError, InjectedFault, MethodNotAllowed, RouteNotFound
from ..store import JobStore
from ..vocab import Operation
from . import gcpolicy
from .admin import ADMIN_PREFIX, admin_routes
from .admin import wrap as admin_wrap
from .fastpath import FastPath
from .faulting import ConnectionDropped, guarded
from .files import download
from .handlers import ENDPOINTS, respond
from .journaling import JournalMiddleware
from .openapi import openapi_document
from .runtime import Runtime

__all__ = ["WanmockApp", "create_app"]

log = logging.getLogger("wanmock")


class WanmockApp(Starlette):
    """Starlette with the submit and poll fast paths (``web/fastpath.py``) in front of it."""

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and scope["type"] == "http":
            method = scope["method"]
            if method == "GET" and await fast.get(scope, send):
                return
            if method == "POST":
                replay = await fast.post(scope, receive, send)
                if replay is None:
                    return
                receive = replay
        await super().__call__(scope, receive, send)


def create_app(
    config: Config | None = None,
    *,
    clock: Clock | None = None,
    store: JobStore | None = None,
    registry: DialectRegistry | None = None,
) -> WanmockApp:
    """Build the fake of every registered provider.

    ``clock`` defaults to a :class:`FakeClock` if ``config.server.fake_clock`` else a
    :class:`RealClock` at ``config.server.time_scale``; ``store`` to an in-memory store.
    With no arguments at all (``uvicorn --factory wanmock.server:create_app``) the config comes
    from the environment (:meth:`Config.from_env`).
    """
    if config is None:
        config = Config.from_env() if clock is None and store is None else Config()
    server = config.server
    if clock is None:
        clock = FakeClock() if server.fake_clock else RealClock(server.time_scale)
    seed = server.seed if server.seed is not None else random.SystemRandom().randrange(2**32)
    engine = Engine(config.lifecycle, seed=seed, store=store)
    dialects = {cls.name: cls(config) for cls in (registry or default_registry())}
    rt = Runtime(config=config, clock=clock, engine=engine, dialects=dialects)
    document = openapi_document(dialects.values())

    routes: list[BaseRoute] = []
    for dialect in dialects.values():
        for spec in dialect.routes:
            endpoint = _provider_endpoint(rt, dialect, spec.operation,
                                          ENDPOINTS[spec.operation])
            routes.append(Route(spec.path, endpoint, methods=[spec.method],
                                name=f"{dialect.name}:{spec.operation}:{spec.method}"))
    routes.append(Route("/files/{provider}/{job_id}/{index:int}.png", partial(download, rt),
                        methods=["GET"], name="files"))
    routes.append(Route("/openapi.json", partial(_openapi, document), methods=["GET"]))
    for path, methods, handler in admin_routes():
        routes.append(Route(ADMIN_PREFIX + path, admin_wrap(rt, handler), methods=methods))

    app = WanmockApp(
        routes=routes,
        lifespan=partial(_lifespan, rt),
        middleware=[Middleware(JournalMiddleware, rt=rt)],
        exception_handlers={
            ApiError: partial(_api_error, rt),
            HTTPException: partial(_http_error, rt),
            Exception: partial(_unexpected, rt),
        },
    )
    app.state.wanmock = rt
    if server.fast_path:
        app.fast_path = FastPath(rt)
    return app


@asynccontextmanager
async def _lifespan(rt: Runtime, app: Starlette) -> AsyncIterator[None]:
    """While served (not in-process): the collector policy of ``server.gc_freeze``."""
    policy = rt.config.server.gc_freeze and not gcpolicy.installed()
    if policy:
        gcpolicy.install()
    try:
        yield
    finally:
        if policy:
            gcpolicy.uninstall()


def _provider_endpoint(
    rt: Runtime, dialect: Dialect, operation: Operation,
    flow: Callable[[Runtime, Dialect, Request], Awaitable[Any]],
) -> Callable[[Request], Awaitable[Response]]:
    def render_error(error: ApiError) -> Response:
        return respond(dialect.render_error(error))

    async def endpoint(request: Request) -> Response:
        request.state.dialect = dialect

        async def produce() -> Response:
            return respond(await flow(rt, dialect, request))

        return await guarded(rt, request, provider=dialect.name, operation=operation,
                             job_id=request.path_params.get("job_id"), produce=produce,
                             render_error=render_error)

    return endpoint


async def _openapi(document: dict[str, Any], request: Request) -> Response:
    return JSONResponse(document)


def _dialect_for(rt: Runtime, request: Request) -> Dialect:
    """The dialect whose error shape fits this request (by route, else by path prefix)."""
    dialect = getattr(request.state, "dialect", None)
    if dialect is not None:
        return dialect  # type: ignore[no-any-return]
    path = request.url.path
    for candidate in rt.dialects.values():
        if path.startswith(candidate.path_prefixes):
            return candidate
    return rt.dialects.get("therouter") or next(iter(rt.dialects.values()))


async def _api_error(rt: Runtime, request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    request.state.error = exc
    return respond(_dialect_for(rt, request).render_error(exc))


async def _http_error(rt: Runtime, request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    error: ApiError
    if exc.status_code == 404:
        error = RouteNotFound(method, path)
    elif exc.status_code == 405:
        error = MethodNotAllowed(method, path, _allowed_methods(request))
    else:
        error = InjectedFault(exc.status_code, str(exc.detail))
    return respond(_dialect_for(rt, request).render_error(error))


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts at this path (Starlette reports only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\0"})
        if match is not Match.NONE and isinstance(route, Route) and route.methods:
            methods |= route.methods
    return sorted(methods)


async def _unexpected(rt: Runtime, request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConnectionDropped):  # an injected fault, not a bug: nothing to send
        raise exc
    log.exception("wanmock bug while serving %s %s", request.method, request.url.path)
    fault = InjectedFault(500, f"wanmock internal error ({type(exc).__name__}); this is a bug")
    return respond(_dialect_for(rt, request).render_error(fault))
