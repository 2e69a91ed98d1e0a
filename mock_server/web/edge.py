"""The one HTTP path of every request a provider's client makes (raw ASGI, no framework).

:class:`Edge` matches a request against every dialect's route table (and the artifact URLs),
builds one frozen :class:`Exchange` (the request's one instant, its owner, provider, operation and
parameters), runs the operation's flow (``flows.py``) under whatever fault is decided for it,
sends the answer and journals it. Requests for anything else (the admin API, ``/openapi.json``,
metrics, the dashboard) go to the Starlette app behind it. There is no second, slower path: every
provider request — plain, faulty, invalid, sync-mode — takes this one.

Order of a request: the gate (a scripted response, the key's rate-limit window: one atomic step of
the shared state, folded into the job read or the job creation when it can be) → the fault
decision (scripts, then rate limit, then rules) → the flow (authenticate → parse → engine →
render) → body faults (drop, truncate, corrupt) → send → journal. Domain errors become the
provider's error body; a bug becomes the provider's 500 and is logged; a client that disconnects
is not an error at all.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from ..dialects import Dialect, Reply, Route
from ..errors import (
    ApiError,
    BudgetExceeded,
    InjectedFault,
    InvalidRequest,
    MethodNotAllowed,
    RateLimited,
    RouteNotFound,
)
from ..faults import Decision, Passage
from ..lifecycle import JobView
from ..state import Gate
from ..vocab import FaultKind, Operation, Phase
from .bodies import ClientGone, encode_reply
from .runtime import Runtime, bearer_key

__all__ = ["FILES", "ConnectionDropped", "Edge", "Exchange", "Outcome"]

log = logging.getLogger("wanmock")

#: Paths longer than this are shortened in the journal and in messages.
_PATH_KEPT = 256


#: The artifact URLs every provider's succeeded jobs point to (signed; no bearer key).
FILES = Route(Operation.DOWNLOAD, "GET", "/files/{provider}/{job_id}/{index}.png",
              "Download an image (pre-signed URL)", None, {})


class ConnectionDropped(Exception):
    """Raised after the headers of a ``drop`` fault were sent: the server closes the socket."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as the flows see it: decided once, when it arrives."""

    rt: Runtime
    dialect: Dialect
    route: Route
    operation: Operation
    method: str
    path: str
    #: Path parameters (``job_id``, ``model_id``…).
    params: Mapping[str, str]
    query: Mapping[str, str]
    #: Request headers by lower-case name (the first of repeated ones, as Starlette reads them).
    headers: Mapping[str, str]
    #: Simulated time the request arrived: the one instant every step of it uses.
    now: float
    #: The owner hash of a well-formed bearer key (not yet judged), else ``None``.
    owner: str | None
    #: The bearer key itself (never stored), if well formed.
    key: str | None
    #: Base URL for links in answers.
    base: str
    receive: Receive

    def gate(self) -> Gate:
        """What this request asks of the shared state first."""
        return Gate(self.dialect.name, self.operation, self.owner or "",
                    self.rt.rules.limit(self.operation))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a flow produced: the answer and what the journal should know about it."""

    reply: Reply
    view: JobView | None = None
    job_id: str | None = None
    #: The job's phase when the request arrived (for a fault decided before the flow).
    phase: Phase | None = None
    error: ApiError | None = None
    decision: Decision | None = None


Flow = Callable[[Exchange], Awaitable[Outcome]]


class _Match(NamedTuple):
    dialect: Dialect
    route: Route | None
    params: dict[str, str]
    #: Methods the path allows when ``route`` is ``None`` (empty: no route at this path).
    allowed: tuple[str, ...] = ()


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name; the first one wins, as in Starlette."""
    return {name.decode("latin-1"): value.decode("latin-1")
            for name, value in reversed(scope["headers"])}


def short(path: str) -> str:
    """A path as kept in the journal and quoted in messages."""
    return path if len(path) <= _PATH_KEPT else path[:_PATH_KEPT] + "…"


class Edge:
    """ASGI app: provider requests here, everything else to ``fallback``."""

    def __init__(self, rt: Runtime, fallback: ASGIApp, flows: Mapping[Operation, Flow]) -> None:
        self.rt = rt
        self.fallback = fallback
        self.flows = flows
        self.routes = [(route, dialect) for dialect in rt.dialects.values()
                       for route in dialect.routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        match = self._match(scope["method"], scope["path"])
        if match is None:
            await self.fallback(scope, receive, send)
            return
        await self._serve(match, scope, receive, send)

    def _match(self, method: str, path: str) -> _Match | None:
        if path.startswith("/files/"):
            found = FILES.pattern.match(path)
            dialect = self.rt.dialects.get(found["provider"]) if found else None
            if found is None or dialect is None:
                return None
            if method != FILES.method:
                return _Match(dialect, None, {}, (FILES.method,))
            return _Match(dialect, FILES, found.groupdict())
        allowed: list[str] = []
        owner: Dialect | None = None
        for route, dialect in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return _Match(dialect, route, found.groupdict())
            allowed.append(route.method)
            owner = dialect
        if owner is not None:
            return _Match(owner, None, {}, tuple(sorted(set(allowed))))
        for dialect in self.rt.dialects.values():
            if path.startswith(dialect.path_prefixes):
                return _Match(dialect, None, {})
        return None

    async def _serve(self, match: _Match, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.rt
        started = time.perf_counter()
        now = rt.clock.now()
        method, path = scope["method"], scope["path"]
        dialect, route = match.dialect, match.route
        outcome: Outcome | None = None
        try:
            await rt.sync_preset()
            if route is None:
                error: ApiError = (MethodNotAllowed(method, short(path), match.allowed)
                                   if match.allowed else RouteNotFound(method, short(path)))
                outcome = Outcome(dialect.render_error(error), error=error)
            else:
                exchange = self._exchange(dialect, route, match.params, scope, receive, now)
                outcome = await self.flows[route.operation](exchange)
            await self._send(send, outcome, scope)
        except ClientGone:
            outcome = None  # nothing to answer: journaled below as 499, no traceback
        except ConnectionDropped:
            raise
        except Exception as exc:
            log.exception("wanmock bug while serving %s %s", method, short(path))
            fault = InjectedFault(500, f"wanmock internal error ({type(exc).__name__}); "
                                  "this is a bug")
            outcome = Outcome(dialect.render_error(fault), error=fault)
            await self._send(send, outcome, scope)
        finally:
            if rt.config.journal.enabled:
                await self._journal(match, scope, now, started, outcome)

    def _exchange(self, dialect: Dialect, route: Route, params: dict[str, str], scope: Scope,
                  receive: Receive, now: float) -> Exchange:
        rt = self.rt
        headers = _headers(scope)
        key = bearer_key(headers.get("authorization", ""))
        server = scope.get("server")
        base = rt.base_for(scope.get("scheme", "http"), headers.get("host"),
                           tuple(server) if server else None,
                           scope.get("root_path", ""))
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                               keep_blank_values=True))
        return Exchange(rt, dialect, route, route.operation, scope["method"], scope["path"],
                        params, query, headers, now, rt.owner(key) if key else None, key, base,
                        receive)

    async def _send(self, send: Send, outcome: Outcome, scope: Scope) -> None:
        status, headers, body = encode_reply(self._units(outcome.reply))
        fault = outcome.decision.fault if outcome.decision else None
        if fault is not None and fault.status is None and fault is not FaultKind.TIMEOUT:
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            if fault is FaultKind.DROP:
                await send({"type": "http.response.start", "status": status,
                            "headers": headers})
                await send({"type": "http.response.body", "body": body[: len(body) // 2],
                            "more_body": True})
                raise ConnectionDropped("wanmock dropped the connection (fault: drop)")
            body = corrupt(body, fault)
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _units(self, reply: Reply) -> Reply:
        """``Retry-After`` in the configured unit (simulated seconds unless told otherwise)."""
        value = reply.headers.get("retry-after")
        if value is None:
            return reply
        seconds = self.rt.retry_after(float(value))
        if seconds == float(value):
            return reply
        headers = {**reply.headers, "retry-after": str(max(1, math.ceil(seconds)))}
        return Reply(reply.status, reply.body, headers, reply.schema)

    async def _journal(self, match: _Match, scope: Scope, now: float, started: float,
                       outcome: Outcome | None) -> None:
        rt = self.rt
        headers = _headers(scope)
        key = bearer_key(headers.get("authorization", ""))
        view = outcome.view if outcome else None
        error = outcome.error if outcome else None
        decision = outcome.decision if outcome else None
        retry_after = None
        if isinstance(error, RateLimited | InjectedFault | BudgetExceeded):
            retry_after = error.retry_after
        await rt.state.record(
            provider=match.dialect.name,
            operation=match.route.operation if match.route else None,
            method=scope["method"],
            path=short(scope["path"]),
            job_id=(view.id if view is not None else outcome.job_id if outcome else None)
            or match.params.get("job_id"),
            key=rt.owner(key) if key else None,
            status=outcome.reply.status if outcome else 499,
            sim_time=now,
            real_time=time.time(),
            duration_ms=(time.perf_counter() - started) * 1000,
            phase=view.phase if view is not None else (outcome.phase if outcome else None),
            fault=str(decision.fault) if decision and decision.fault else None,
            retry_after=retry_after,
            violations=[f"{v.field}: {v.rule}" for v in error.violations]
            if isinstance(error, InvalidRequest) else (),
            finished_at=view.finished_at if view is not None else None,
        )


def error_of(decision: Decision) -> ApiError | None:
    """The domain error an error fault answers with (``None`` for body faults and no fault)."""
    fault = decision.fault
    if fault is None or fault.status is None:
        return None
    if fault is FaultKind.HTTP_429:
        return RateLimited(decision.retry_after or 1.0, "rate limit exceeded (wanmock: "
                           f"{decision.source}); retry after {decision.retry_after or 1:g} s")
    reason = HTTPStatus(fault.status).phrase
    return InjectedFault(fault.status, f"{reason} (injected by wanmock: {fault})",
                         retry_after=decision.retry_after)


def corrupt(body: bytes, fault: FaultKind) -> bytes:
    """A body as a body fault spoils it."""
    if fault is FaultKind.EMPTY_BODY:
        return b""
    if fault is FaultKind.TRUNCATED_JSON:
        return body[: len(body) // 2]
    if fault is FaultKind.MALFORMED_JSON:
        return body[:-1] + b",}" if body.endswith(b"}") else body + b"}"
    return body


async def decided(exchange: Exchange, passage: Passage, phase: Phase | None) -> Decision:
    """The fault decision for a request whose gate answered ``passage`` (and its latency,
    waited out on the simulated clock)."""
    rt = exchange.rt
    decision = rt.rules.decide(passage, exchange.dialect.name, exchange.operation, phase,
                               rt.state.rng)
    if decision.delay > 0:
        await rt.clock.sleep_until(exchange.now + decision.delay)
    return decision


def faulted(exchange: Exchange, decision: Decision, *, job_id: str | None = None,
            phase: Phase | None = None) -> Outcome | None:
    """The error answer of an error fault, or ``None`` (no fault, or one that spoils the body
    of the normal answer)."""
    error = error_of(decision)
    if error is None:
        return None
    return Outcome(exchange.dialect.render_error(error), job_id=job_id, phase=phase,
                   error=error, decision=decision)


def answer(exchange: Exchange, error: ApiError, **outcome: Any) -> Outcome:
    """A domain error, in the provider's shape."""
    return Outcome(exchange.dialect.render_error(error), error=error, **outcome)
