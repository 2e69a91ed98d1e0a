"""The servers the whole-server benchmark compares, as uvicorn factories.

* ``raw`` — a bare ASGI callable answering constant bytes: the practical limit of a Python ASGI
  server on this box.
* ``raw_busy`` — ``raw`` burning 130 µs of CPU per request: a control for tail latency.
* ``starlette`` — a bare Starlette app answering a constant JSON.
* ``fake`` / ``fake_nojournal`` — wanmock itself (auth on; journal on or off).
* ``raw_app`` / ``fake_app`` — ready-made instances, for servers that take no factory.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from wanmock.server import Config, create_app

BODY = b'{"id":"img_00000000000000000000000000","object":"image_job","status":"in_progress"}'


def raw() -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            while (await receive()).get("more_body"):
                pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(BODY)).encode())]})
        await send({"type": "http.response.body", "body": BODY})

    return app


def raw_busy() -> object:
    """``raw`` plus 130 µs of CPU per request (about what the fake spends on a submit): a control
    showing how uvicorn's tail latency behaves for any app that saturates its worker."""
    inner = raw()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            end = time.perf_counter() + 130e-6
            while time.perf_counter() < end:
                pass
        await inner(scope, receive, send)  # type: ignore[operator]

    return app


def starlette() -> Starlette:
    async def constant(request: Request) -> Response:
        if request.method == "POST":
            await request.body()
        return JSONResponse({"id": "img_00000000000000000000000000", "object": "image_job",
                             "status": "in_progress"})

    return Starlette(routes=[Route("/{path:path}", constant, methods=["GET", "POST"])])


def fake() -> Starlette:
    return create_app(Config().replace(server={"seed": 1}, lifecycle={"run_time": "fixed(1e9)"}))


def fake_nojournal() -> Starlette:
    return create_app(Config().replace(server={"seed": 1}, journal={"enabled": False},
                                       lifecycle={"run_time": "fixed(1e9)"}))


def __getattr__(name: str) -> object:
    """``raw_app`` / ``fake_app``: instances for servers without a factory option (granian)."""
    if name in ("raw_app", "fake_app"):
        return {"raw_app": raw, "fake_app": fake}[name]()
    raise AttributeError(name)
