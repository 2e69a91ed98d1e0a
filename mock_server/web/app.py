"""The app factory: ``create_app(config, *, clock=None, store=None)``.

Routes are a readable table built from the dialect registry; domain errors become provider-shaped
responses in one exception-handler table; admin routes live under ``/__admin``.

>>> from mock_server import FakeClock
>>> app = create_app(clock=FakeClock())
>>> sorted(app.state.wanmock.dialects)
['runcomfy', 'therouter']
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from ..clock import Clock, FakeClock, RealClock
from ..config import Config
from ..dialects import Dialect, DialectRegistry, default_registry
from ..engine import Engine
from ..errors import ApiError, InjectedFault, MethodNotAllowed, RouteNotFound
from ..store import JobStore
from .admin import ADMIN_PREFIX, admin_routes
from .files import download
from .handlers import ENDPOINTS, respond
from .openapi import openapi_document
from .runtime import Runtime

__all__ = ["create_app"]

log = logging.getLogger("wanmock")


def create_app(
    config: Config | None = None,
    *,
    clock: Clock | None = None,
    store: JobStore | None = None,
    registry: DialectRegistry | None = None,
) -> Starlette:
    """Build the fake of every registered provider.

    ``clock`` defaults to a :class:`FakeClock` if ``config.server.fake_clock`` else a
    :class:`RealClock` at ``config.server.time_scale``; ``store`` to an in-memory store.
    With no arguments at all (``uvicorn --factory mock_server:create_app``) the config comes
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
            endpoint = _provider_endpoint(rt, dialect, ENDPOINTS[spec.operation])
            routes.append(Route(spec.path, endpoint, methods=[spec.method],
                                name=f"{dialect.name}:{spec.operation}:{spec.method}"))
    routes.append(Route("/files/{provider}/{job_id}/{index:int}.png", partial(download, rt),
                        methods=["GET"], name="files"))
    routes.append(Route("/openapi.json", partial(_openapi, document), methods=["GET"]))
    for path, methods, handler in admin_routes():
        routes.append(Route(ADMIN_PREFIX + path, _admin_endpoint(rt, handler), methods=methods))

    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: partial(_api_error, rt),
            HTTPException: partial(_http_error, rt),
            Exception: partial(_unexpected, rt),
        },
    )
    app.state.wanmock = rt
    return app


def _provider_endpoint(
    rt: Runtime, dialect: Dialect, flow: Callable[[Runtime, Dialect, Request], Awaitable[Any]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request.state.dialect = dialect
        return respond(await flow(rt, dialect, request))

    return endpoint


def _admin_endpoint(
    rt: Runtime, handler: Callable[[Runtime, Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    from .admin import _allowed, _problem

    async def endpoint(request: Request) -> Response:
        denied = _allowed(rt, request)
        if denied is not None:
            return denied
        try:
            return await handler(rt, request)
        except ApiError as exc:
            return _problem(400, exc.message)

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
    log.exception("wanmock bug while serving %s %s", request.method, request.url.path)
    fault = InjectedFault(500, f"wanmock internal error ({type(exc).__name__}); this is a bug")
    return respond(_dialect_for(rt, request).render_error(fault))
