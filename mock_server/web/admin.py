"""The admin API under ``/__admin``: clock, presets, scripted faults, journal, reset.

Never mixed with provider paths. Access: a bearer ``admin_token`` when configured, otherwise
loopback clients only. Errors are ``{"error": "..."}`` with a message naming the field.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..clock import FakeClock
from ..errors import ApiError, ConfigError
from ..faults import ScriptedFault, parse_fault
from ..presets import PRESETS
from ..vocab import Operation, parse_enum
from .handlers import read_json
from .runtime import Runtime

__all__ = ["ADMIN_PREFIX", "admin_routes"]

ADMIN_PREFIX = "/__admin"
Handler = Callable[[Runtime, Request], Awaitable[Response]]


class AdminError(Exception):
    """A bad admin request; becomes a 4xx ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def problem(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status)


def denied(rt: Runtime, request: Request) -> Response | None:
    """A 401/403 if this client may not use the admin API, else ``None``."""
    token = rt.config.server.admin_token
    if token is not None:
        if request.headers.get("authorization") != f"Bearer {token}":
            return problem(401, "admin API: send 'Authorization: Bearer <admin token>'")
        return None
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host in ("localhost", "testclient")
    if not loopback:
        return problem(403, "admin API: loopback clients only (or configure an admin token)")
    return None


def wrap(rt: Runtime, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Access check plus error translation around one admin handler."""

    async def endpoint(request: Request) -> Response:
        refusal = denied(rt, request)
        if refusal is not None:
            return refusal
        try:
            return await handler(rt, request)
        except AdminError as exc:
            return problem(exc.status, str(exc))
        except (ApiError, ConfigError) as exc:
            return problem(400, str(exc))

    return endpoint


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request, 1 << 20)
    if not isinstance(body, dict):
        raise AdminError("body must be a JSON object")
    return body


async def clock(rt: Runtime, request: Request) -> Response:
    """``GET``: the simulated time. ``POST /clock/advance {"seconds": n}``: move a fake clock."""
    fake = isinstance(rt.clock, FakeClock)
    if request.method == "POST":
        if not isinstance(rt.clock, FakeClock):
            raise AdminError("the clock is real (scaled); start with --fake-clock to advance", 409)
        seconds = (await _body(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise AdminError(f"seconds must be a number >= 0; got {json.dumps(seconds)}")
        rt.clock.advance(float(seconds))
    return JSONResponse({"now": rt.clock.now(), "fake": fake})


async def health(rt: Runtime, request: Request) -> Response:
    """Liveness plus a few counters."""
    return JSONResponse({
        "status": "ok",
        "seed": rt.seed,
        "jobs": len(rt.engine.store),
        "providers": sorted(rt.dialects),
        "preset": rt.config.preset or None,
        "now": rt.clock.now(),
        "journal": {"entries": len(rt.journal.entries), "total": rt.journal.total},
    })


async def presets(rt: Runtime, request: Request) -> Response:
    """``GET``: the presets. ``POST {"name": "flaky"}``: switch for jobs submitted from now on."""
    if request.method == "POST":
        name = (await _body(request)).get("name")
        if not isinstance(name, str):
            raise AdminError(f"name must be a preset name; got {json.dumps(name)}")
        rt.use_preset(name)
    return JSONResponse({"current": rt.config.preset or None,
                         "presets": {name: text for name, (text, _) in PRESETS.items()}})


async def script(rt: Runtime, request: Request) -> Response:
    """``POST {"provider"?, "operation"?, "responses": ["http-503", {"fault": ..}, "pass"]}``:
    the next responses of that endpoint, in order. ``GET``: what is still scripted."""
    if request.method == "POST":
        body = await _body(request)
        provider = body.get("provider")
        if provider is not None and provider not in rt.dialects:
            raise AdminError(f"provider must be one of {', '.join(sorted(rt.dialects))}; "
                             f"got {json.dumps(provider)}")
        operation = body.get("operation")
        op = parse_enum(Operation, operation, name="operation") if operation else None
        responses = body.get("responses")
        if not isinstance(responses, list) or not responses:
            raise AdminError("responses must be a non-empty list of faults")
        items = []
        for i, item in enumerate(responses):
            spec = {"fault": item} if isinstance(item, str) else item
            if not isinstance(spec, dict):
                raise AdminError(f"responses[{i}] must be a fault name or an object")
            fault = parse_fault(spec.get("fault"), name=f"responses[{i}].fault")
            retry_after = spec.get("retry_after", 5.0)
            if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
                raise AdminError(f"responses[{i}].retry_after must be a number")
            items.append(ScriptedFault(fault, float(retry_after)))
        rt.faults.script(items, provider=provider, operation=op)
    return JSONResponse({"scripted": rt.faults.scripted()})


async def reset(rt: Runtime, request: Request) -> Response:
    """Forget every job, journal entry, script and rate-limit window (the clock stays)."""
    rt.reset()
    return JSONResponse({"reset": True, "now": rt.clock.now()})


async def journal(rt: Runtime, request: Request) -> Response:
    """``GET ?job_id=&provider=&limit=``: recorded requests, oldest first."""
    query = request.query_params
    limit = query.get("limit")
    if limit is not None and not limit.isdigit():
        raise AdminError(f"limit must be a whole number; got {limit!r}")
    entries = rt.journal.query(job_id=query.get("job_id"), provider=query.get("provider"),
                               limit=int(limit) if limit else None)
    return JSONResponse({"total": rt.journal.total, "entries": [e.to_dict() for e in entries]})


async def journal_jobs(rt: Runtime, request: Request) -> Response:
    """``GET [?job_id=]``: per-job client behaviour summaries."""
    job_id = request.query_params.get("job_id")
    if job_id is not None:
        summary = rt.journal.job(job_id)
        if summary is None:
            raise AdminError(f"no journal entries for job {job_id!r}", 404)
        return JSONResponse(summary.to_dict())
    return JSONResponse({"jobs": [s.to_dict() for s in rt.journal.jobs()]})


def admin_routes() -> list[tuple[str, list[str], Handler]]:
    """``(path, methods, handler)`` for every admin endpoint, paths relative to the prefix."""
    return [
        ("/health", ["GET"], health),
        ("/clock", ["GET"], clock),
        ("/clock/advance", ["POST"], clock),
        ("/presets", ["GET", "POST"], presets),
        ("/script", ["GET", "POST"], script),
        ("/reset", ["POST"], reset),
        ("/journal", ["GET"], journal),
        ("/journal/jobs", ["GET"], journal_jobs),
    ]
