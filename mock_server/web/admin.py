"""The admin API under ``/__admin``: clock, presets, scripted faults, journal, reset; the
dashboard page, its ``dashboard.json`` and the Prometheus ``metrics``.

Never mixed with provider paths. Who may use it:

* with ``admin_token`` configured: whoever sends ``Authorization: Bearer <token>`` (compared in
  constant time), from anywhere;
* without: loopback clients only, and only same-origin — a request whose ``Host`` is not a
  loopback name (DNS rebinding) or whose ``Origin`` / ``Sec-Fetch-Site`` says another site sent
  it (a cross-site form post) is refused. A local relay (a reverse proxy on this host) makes
  remote clients look like loopback: configure a token whenever the port is reachable from
  elsewhere.

Errors are ``{"error": "..."}`` with a message naming the field.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..clock import FakeClock
from ..errors import ApiError, ConfigError, StateUnavailable
from ..faults import ScriptedFault, parse_fault
from ..presets import PRESETS
from ..vocab import Operation, parse_enum
from .bodies import decode_json
from .dashboard import PAGE_HEADERS, page
from .metrics import render
from .observe import dashboard_document, snapshot
from .runtime import Runtime

__all__ = ["ADMIN_PREFIX", "admin_routes", "denied"]

ADMIN_PREFIX = "/__admin"
Handler = Callable[[Runtime, Request], Awaitable[Response]]
_LOOPBACK_NAMES = ("localhost", "testclient")


class AdminError(Exception):
    """A bad admin request; becomes a 4xx ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def problem(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status)


def _loopback(host: str) -> bool:
    name = host.strip("[]")
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hostname(authority: str) -> str:
    """``host`` of ``host[:port]`` (``[v6]:port`` too); ``""`` if it cannot be read."""
    try:
        return urlsplit(f"//{authority}").hostname or ""
    except ValueError:  # e.g. "[zz": not a loopback name, refused as any other
        return ""


def _authority(origin: str) -> str | None:
    """``host[:port]`` of an ``Origin`` header, ``None`` if it cannot be read."""
    try:
        return urlsplit(origin).netloc
    except ValueError:
        return None


#: The latest simulated time a clock may be advanced to (epoch seconds of 9000-01-01): dates
#: written later (a job's expiry, a URL's signing date) must stay within datetime's year 9999.
_LATEST = 221_845_392_000.0


def denied(rt: Runtime, request: Request) -> Response | None:
    """A 401/403 if this request may not use the admin API, else ``None``."""
    token = rt.config.server.admin_token
    if token is not None:
        given = request.headers.get("authorization", "").encode("latin-1")
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            return problem(401, "admin API: send 'Authorization: Bearer <admin token>'")
        return None
    client = request.client.host if request.client else ""
    if not _loopback(client):
        return problem(403, "admin API: loopback clients only (or configure an admin token: "
                            "--admin-token)")
    host = request.headers.get("host", "")
    if host and not _loopback(_hostname(host)):
        return problem(403, f"admin API: Host {host[:100]!r} is not a loopback name (a DNS "
                            "rebinding attempt?); use 127.0.0.1 or configure an admin token")
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if (origin is not None and origin != "null" and _authority(origin) != host) or (
            site is not None and site not in ("same-origin", "none")):
        return problem(403, "admin API: cross-site requests are refused (Origin "
                            f"{(origin or site or '')[:100]!r}); configure an admin token to "
                            "use it from another site")
    return None


def wrap(rt: Runtime, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Access check plus error translation around one admin handler."""

    async def endpoint(request: Request) -> Response:
        refusal = denied(rt, request)
        # The page holds no data: with a token it is served without one (a browser cannot send
        # a bearer token when it opens a page; the page asks for the token on its first 401).
        if refusal is not None and not (refusal.status_code == 401 and handler is dashboard):
            return refusal
        try:
            await rt.sync_preset()  # what other workers changed (a shared fake clock's time)
            return await handler(rt, request)
        except StateUnavailable as exc:
            return JSONResponse({"status": "state unavailable", "error": exc.message}, 503,
                                headers={"retry-after": "1"})
        except AdminError as exc:
            return problem(exc.status, str(exc))
        except (ApiError, ConfigError) as exc:
            return problem(400, str(exc))

    return endpoint


async def _body(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise AdminError("this endpoint takes a JSON body: send Content-Type: application/json "
                         f"(got {media or 'none'})", 415)
    raw = await request.body()
    if len(raw) > 1 << 20:
        raise AdminError("body too large (limit 1 MiB)", 413)
    body = decode_json(raw)
    if not isinstance(body, dict):
        raise AdminError("body must be a JSON object")
    return body


def _count(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 9) or int(value) < 1:
        raise AdminError(f"{name} must be a whole number from 1; got {value[:40]!r}")
    return int(value)


def _one(request: Request, name: str) -> str | None:
    """A query parameter given at most once (a repeat is refused, never read as one of two)."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise AdminError(f"query parameter {name} is given {len(values)} times; give it once")
    return values[0] if values else None


async def clock(rt: Runtime, request: Request) -> Response:
    """``GET``: the simulated time. ``POST /clock/advance {"seconds": n}``: move a fake clock."""
    fake = isinstance(rt.clock, FakeClock)
    if request.method == "POST":
        if not isinstance(rt.clock, FakeClock):
            raise AdminError("the clock is real (scaled); start with --fake-clock to advance", 409)
        seconds = (await _body(request)).get("seconds")
        if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                or not 0 <= seconds < 1e12):
            raise AdminError(f"seconds must be a number >= 0; got {json.dumps(seconds)[:40]}")
        if rt.clock.now() + seconds > _LATEST:
            raise AdminError(f"seconds {seconds:g} would move the clock past the year 9000 (now "
                             f"{rt.clock.now():.0f}); the fake writes its dates (timestamps, "
                             "image URL signatures) only up to then")
        await rt.clock.move(float(seconds))
    server = rt.config.server
    return JSONResponse({"now": rt.clock.now(), "fake": fake,
                         "scale": None if fake else server.time_scale})


async def health(rt: Runtime, request: Request) -> Response:
    """Liveness plus a few counters (no secrets: the signing key is never shown)."""
    now = rt.clock.now()
    census = await rt.state.census(now)  # unavailable: 503 "state unavailable" (see wrap)
    journal = await rt.state.journal()
    return JSONResponse({
        "status": "ok",
        "seed": getattr(rt.state, "seed", None),
        "state": rt.config.server.state.split("@")[-1],
        "worker": os.getpid(),
        "jobs": census.total,
        "providers": sorted(rt.dialects),
        "preset": rt.config.preset or None,
        "now": now,
        "journal": {"entries": len(journal.entries), "total": journal.total,
                    "dropped_entries": journal.dropped_entries,
                    "dropped_jobs": journal.dropped_jobs},
    })


async def presets(rt: Runtime, request: Request) -> Response:
    """``GET``: the presets. ``POST {"name": "flaky"}``: switch for jobs submitted from now on
    (``""`` or ``null``: back to the configuration the server started with)."""
    if request.method == "POST":
        name = (await _body(request)).get("name")
        if name is None:
            name = ""
        if not isinstance(name, str):
            raise AdminError(f"name must be a preset name; got {json.dumps(name)[:40]}")
        rt.use_preset(name)
        await rt.state.set_preset(name)
    return JSONResponse({"current": rt.config.preset or None,
                         "presets": {name: text for name, (text, _) in PRESETS.items()}})


async def script(rt: Runtime, request: Request) -> Response:
    """``POST {"provider"?, "operation"?, "responses": ["http-503", {"fault": ..}, "pass"]}``:
    the next responses of that endpoint, in order. ``GET``: what is still scripted."""
    if request.method == "POST":
        body = await _body(request)
        provider = body.get("provider")
        if provider is not None and (not isinstance(provider, str) or provider not in rt.dialects):
            raise AdminError(f"provider must be one of {', '.join(sorted(rt.dialects))}; "
                             f"got {json.dumps(provider)[:40]}")
        operation = body.get("operation")
        op = parse_enum(Operation, operation, name="operation") if operation else None
        responses = body.get("responses")
        if not isinstance(responses, list) or not responses or len(responses) > 10_000:
            raise AdminError("responses must be a non-empty list of faults (at most 10000)")
        items = []
        for i, item in enumerate(responses):
            spec = {"fault": item} if isinstance(item, str) else item
            if not isinstance(spec, dict):
                raise AdminError(f"responses[{i}] must be a fault name or an object")
            fault = parse_fault(spec.get("fault"), name=f"responses[{i}].fault")
            retry_after = spec.get("retry_after", 5.0)
            if (isinstance(retry_after, bool) or not isinstance(retry_after, int | float)
                    or not 0 <= retry_after <= 86_400):
                raise AdminError(f"responses[{i}].retry_after must be a number of seconds "
                                 "(0 to 86400)")
            items.append(ScriptedFault(fault, float(retry_after)))
        await rt.state.script(items, provider=provider, operation=op)
    return JSONResponse({"scripted": await rt.state.scripted()})


async def reset(rt: Runtime, request: Request) -> Response:
    """Forget every job, journal entry, script and rate-limit window (the clock stays)."""
    await rt.state.reset()
    rt.memo.clear()
    return JSONResponse({"reset": True, "now": rt.clock.now()})


async def journal(rt: Runtime, request: Request) -> Response:
    """``GET ?job_id=&provider=&key=&limit=``: recorded requests, oldest first."""
    limit = _count("limit", _one(request, "limit"))
    kept = await rt.state.journal()
    entries = kept.query(job_id=_one(request, "job_id"), provider=_one(request, "provider"),
                         key=_one(request, "key"), limit=limit)
    return JSONResponse({"total": kept.total, "dropped": kept.dropped_entries,
                         "entries": [e.to_dict() for e in entries]})


async def journal_jobs(rt: Runtime, request: Request) -> Response:
    """``GET [?job_id=]``: per-job client behaviour summaries."""
    job_id = _one(request, "job_id")
    kept = await rt.state.journal()
    if job_id is not None:
        summary = kept.job(job_id)
        if summary is None:
            raise AdminError(f"no journal entries for job {job_id[:100]!r}", 404)
        return JSONResponse(summary.to_dict())
    return JSONResponse({"dropped": kept.dropped_jobs,
                         "jobs": [s.to_dict() for s in kept.jobs()]})


async def journal_keys(rt: Runtime, request: Request) -> Response:
    """``GET [?key=]``: per-key (owner hash) client behaviour summaries."""
    key = _one(request, "key")
    kept = await rt.state.journal()
    if key is not None:
        summary = kept.key(key)
        if summary is None:
            raise AdminError(f"no journal entries for key {key[:100]!r}", 404)
        return JSONResponse(summary.to_dict())
    return JSONResponse({"dropped": kept.dropped_keys,
                         "keys": [s.to_dict() for s in kept.keys()]})  # noqa: SIM118


async def dashboard(rt: Runtime, request: Request) -> Response:
    """The live dashboard page (it polls ``dashboard.json`` beside it)."""
    return Response(page(), media_type="text/html", headers=PAGE_HEADERS)


async def dashboard_json(rt: Runtime, request: Request) -> Response:
    """Every number of the dashboard now (``schemas/admin/dashboard.json``)."""
    return JSONResponse(await dashboard_document(rt), headers={"Cache-Control": "no-store"})


async def metrics(rt: Runtime, request: Request) -> Response:
    """The Prometheus text exposition of the whole fleet's numbers (see ``web/observe.py``)."""
    snap, _ = await snapshot(rt)
    return Response(render(snap), headers={"Content-Type": CONTENT_TYPE_LATEST,
                                           "Cache-Control": "no-store"})


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
        ("/journal/keys", ["GET"], journal_keys),
        ("", ["GET"], dashboard),
        ("/", ["GET"], dashboard),
        ("/dashboard", ["GET"], dashboard),
        ("/dashboard.json", ["GET"], dashboard_json),
        ("/metrics", ["GET"], metrics),
    ]
