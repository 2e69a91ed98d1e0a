"""The admin API under ``/__admin``: clock, reset, health. Never mixed with provider paths.

Access: a bearer ``admin_token`` when configured, otherwise loopback clients only.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..clock import FakeClock
from .handlers import read_json
from .runtime import Runtime

__all__ = ["ADMIN_PREFIX", "admin_routes"]

ADMIN_PREFIX = "/__admin"


def _problem(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status)


def _allowed(rt: Runtime, request: Request) -> Response | None:
    token = rt.config.server.admin_token
    if token is not None:
        if request.headers.get("authorization") != f"Bearer {token}":
            return _problem(401, "admin API: send 'Authorization: Bearer <admin token>'")
        return None
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host in ("localhost", "testclient")
    if not loopback:
        return _problem(403, "admin API: loopback clients only (or configure an admin token)")
    return None


async def clock(rt: Runtime, request: Request) -> Response:
    """``GET``: the simulated time. ``POST /clock/advance {"seconds": n}``: move a fake clock."""
    fake = isinstance(rt.clock, FakeClock)
    if request.method == "POST":
        if not isinstance(rt.clock, FakeClock):
            return _problem(409, "the clock is real (scaled); start with --fake-clock to advance")
        body = await read_json(request, 4096)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return _problem(400, f"seconds must be a number >= 0; got {json.dumps(seconds)}")
        rt.clock.advance(float(seconds))
    return JSONResponse({"now": rt.clock.now(), "fake": fake})


async def health(rt: Runtime, request: Request) -> Response:
    """Liveness plus a few counters."""
    body: dict[str, Any] = {
        "status": "ok",
        "seed": rt.seed,
        "jobs": len(rt.engine.store),
        "providers": sorted(rt.dialects),
        "now": rt.clock.now(),
    }
    return JSONResponse(body)


def admin_routes() -> list[tuple[str, list[str], Any]]:
    """``(path, methods, handler)`` for every admin endpoint, paths relative to the prefix."""
    return [
        ("/health", ["GET"], health),
        ("/clock", ["GET"], clock),
        ("/clock/advance", ["POST"], clock),
    ]


