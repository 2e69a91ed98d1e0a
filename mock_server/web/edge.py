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
import time
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..dialects import Dialect, Reply, Route, Stamped, retry_after_header
from ..errors import (
    ApiError,
    BudgetExceeded,
    InjectedFault,
    InvalidRequest,
    MethodNotAllowed,
    RateLimited,
    RouteNotFound,
    StateUnavailable,
)
from ..faults import Decision, Passage
from ..journal import Request
from ..lifecycle import JobView
from ..state import Gate
from ..vocab import FaultKind, Operation, Phase
from .bodies import ClientGone, encode_reply
from .memo import Encoded
from .runtime import Runtime, bearer_key

__all__ = ["FILES", "ConnectionDropped", "Edge", "Exchange", "Outcome"]

log = logging.getLogger("wanmock")

#: Paths longer than this are shortened in the journal and in messages.
_PATH_KEPT = 256
_UNSEEN: Any = object()
_NO_QUERY: Mapping[str, str] = MappingProxyType({})
#: The decision when nothing can act on a request.
NO_FAULT = Decision()
#: Errors answered with a ``Retry-After`` (journaled with it).
_RETRY_AFTER = (RateLimited, InjectedFault, BudgetExceeded, StateUnavailable)


#: The artifact URLs every provider's succeeded jobs point to (signed; no bearer key).
FILES = Route(Operation.DOWNLOAD, "GET", "/files/{provider}/{job_id}/{index}.png",
              "Download an image (pre-signed URL)", None, {})


class ConnectionDropped(Exception):
    """Raised after the headers of a ``drop`` fault were sent: the server closes the socket."""


class Exchange(NamedTuple):
    """One request as the flows see it: decided once, when it arrives (immutable; a named
    tuple because one is made per request, at a third of a frozen dataclass's cost)."""

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


class Outcome(NamedTuple):
    """What a flow produced: the answer and what the journal should know about it."""

    reply: Reply
    view: JobView | None = None
    job_id: str | None = None
    #: The job's phase when the request arrived (for a fault decided before the flow).
    phase: Phase | None = None
    error: ApiError | None = None
    decision: Decision | None = None
    #: The answer already encoded (a memoised status answer), sent as it is.
    encoded: Encoded | None = None


Flow = Callable[[Exchange], Awaitable[Outcome]]


class _Match(NamedTuple):
    dialect: Dialect
    route: Route | None
    params: dict[str, str]
    #: Methods the path allows when ``route`` is ``None`` (empty: no route at this path).
    allowed: tuple[str, ...] = ()


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name. A name sent more than once is one value, the values
    joined by ", " (RFC 9110 §5.3): a second, different value cannot hide behind a valid first.
    """
    sent = scope["headers"]
    found = {name.decode("latin-1"): value.decode("latin-1") for name, value in sent}
    if len(found) < len(sent):
        found = {}
        for name, value in sent:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def _headless(send: Send) -> Send:
    """``send`` for a HEAD request: the GET answer's status and headers (its Content-Length
    included), no body bytes."""
    async def without_body(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return without_body


def short(path: str) -> str:
    """A path as kept in the journal and quoted in messages."""
    return path if len(path) <= _PATH_KEPT else path[:_PATH_KEPT] + "…"


#: Paths up to this long have their route match remembered (every valid one is shorter).
_MATCH_KEPT = 300


class Edge:
    """ASGI app: provider requests here, everything else to ``fallback``."""

    def __init__(self, rt: Runtime, fallback: ASGIApp, flows: Mapping[Operation, Flow]) -> None:
        self.rt = rt
        self.fallback = fallback
        self.flows = flows
        self.routes = [(route, route.pattern, dialect) for dialect in rt.dialects.values()
                       for route in dialect.routes]
        # Small caches of pure functions of a request (bounded; cleared when full): a poll
        # repeats the same path, query string and host over and over.
        self._matches: dict[tuple[str, bytes | str], _Match | None] = {}
        self._queries: dict[bytes, Mapping[str, str]] = {}
        self._bases: dict[tuple[str, str | None, Any, str], str] = {}
        #: Per-call values of the providers that put one in every answer (a fresh request_id).
        self._stamps: dict[str, Callable[[bytes], bytes]] = {
            name: dialect.stamp for name, dialect in rt.dialects.items()
            if isinstance(dialect, Stamped)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        # Routes match the path as sent (percent-encoded), as Express and most HTTP routers do:
        # an escaped slash stays inside its segment (``/v1/jobs/a%2Fb`` asks for job ``a/b``
        # and is answered in the provider's shape, not as an unknown route).
        method = scope["method"]
        head = method == "HEAD"  # a GET whose answer goes without its body (RFC 9110 §9.3.2)
        match = self._match("GET" if head else method, scope.get("raw_path") or scope["path"])
        if match is None:
            await self.fallback(scope, receive, send)
            return
        await self._serve(match, scope, receive, _headless(send) if head else send)

    def _match(self, method: str, path: bytes | str) -> _Match | None:
        if len(path) > _MATCH_KEPT:
            return self._find(method, path)
        key = (method, path)
        found = self._matches.get(key, _UNSEEN)
        if found is _UNSEEN:
            if len(self._matches) >= 4096:
                self._matches.clear()
            found = self._matches[key] = self._find(method, path)
        return found  # type: ignore[no-any-return]

    def _find(self, method: str, sent: bytes | str) -> _Match | None:
        """The route of a path: ``bytes`` is the raw (percent-encoded) path, whose parameters
        are decoded here; ``str`` is an already decoded path (a server that gives no raw one).
        """
        if isinstance(sent, bytes):
            path = sent.partition(b"?")[0].decode("latin-1")
            match = self._route_of(method, path)
            if match is None or not match.params or "%" not in path:
                return match
            return match._replace(params={
                name: unquote_to_bytes(value.encode("latin-1")).decode("utf-8", "replace")
                for name, value in match.params.items()})
        return self._route_of(method, sent)

    def _route_of(self, method: str, path: str) -> _Match | None:
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
        for route, pattern, dialect in self.routes:
            found = pattern.match(path)
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
        method, path = scope["method"], scope["path"]
        dialect, route = match.dialect, match.route
        outcome: Outcome | None = None
        headers = _headers(scope)
        key = bearer_key(headers.get("authorization", ""))
        owner = rt.owner(key) if key else None
        now = rt.clock.now()
        rt.arrived += 1
        try:
            if not rt.local:
                try:
                    await rt.sync_preset()  # a shared fake clock's time is read here too
                finally:
                    now = rt.clock.now()
            if route is None:
                error: ApiError = (MethodNotAllowed(method, short(path), match.allowed)
                                   if match.allowed else RouteNotFound(method, short(path)))
                outcome = Outcome(dialect.render_error(error), error=error)
            else:
                exchange = Exchange(
                    rt, dialect, route, route.operation, method, path, match.params,
                    self._query(scope.get("query_string", b"")), headers, now, owner, key,
                    self._base(scope, headers.get("host")), receive)
                outcome = await self.flows[route.operation](exchange)
            await self._send(send, outcome, dialect)
        except ClientGone:
            outcome = None  # nothing to answer: journaled below as 499, no traceback
        except ConnectionDropped:
            raise
        except StateUnavailable as unavailable:  # Redis down or slow: the provider's 503
            outcome = Outcome(dialect.render_error(unavailable), error=unavailable)
            await self._send(send, outcome, dialect)
        except Exception as exc:
            log.exception("wanmock bug while serving %s %s", method, short(path))
            fault = InjectedFault(500, f"wanmock internal error ({type(exc).__name__}); "
                                  "this is a bug")
            outcome = Outcome(dialect.render_error(fault), error=fault)
            await self._send(send, outcome, dialect)
        finally:
            try:
                if rt.config.journal.enabled:
                    await self._journal(match, scope, owner, now, started, outcome)
            finally:
                rt.journaled += 1  # after journaling: see Runtime.settled

    def _query(self, raw: bytes) -> Mapping[str, str]:
        """The query parameters. A name given more than once is one value, the values joined
        by "," (as Spring reads them): a typed parameter given twice is refused naming it,
        never silently read as its first or last value."""
        if not raw:
            return _NO_QUERY
        query = self._queries.get(raw)
        if query is None:
            pairs: dict[str, str] = {}
            for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
                pairs[name] = f"{pairs[name]},{value}" if name in pairs else value
            query = MappingProxyType(pairs)
            if len(raw) <= _MATCH_KEPT:
                if len(self._queries) >= 256:
                    self._queries.clear()
                self._queries[raw] = query
        return query

    def _base(self, scope: Scope, host: str | None) -> str:
        server = scope.get("server")
        server = tuple(server) if server else None  # a list under some servers
        key = (scope.get("scheme", "http"), host, server, scope.get("root_path", ""))
        base = self._bases.get(key) if host is None or len(host) < 256 else None
        if base is None:
            base = self.rt.base_for(key[0], host, server, key[3])
            if host is None or len(host) < 256:
                if len(self._bases) >= 256:
                    self._bases.clear()
                self._bases[key] = base
        return base

    async def _send(self, send: Send, outcome: Outcome, dialect: Dialect) -> None:
        # A memoised answer is already encoded (a status answer carries no Retry-After to
        # convert); a body fault spoils those bytes like any others.
        status, headers, body = (outcome.encoded if outcome.encoded is not None
                                 else encode_reply(self._units(outcome.reply)))
        stamp = self._stamps.get(dialect.name)
        if stamp is not None:
            body = stamp(body)
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
        headers = {**reply.headers, "retry-after": retry_after_header(seconds)}
        return Reply(reply.status, reply.body, headers, reply.schema)

    async def _journal(self, match: _Match, scope: Scope, owner: str | None, now: float,
                       started: float, outcome: Outcome | None) -> None:
        rt = self.rt
        view = outcome.view if outcome else None
        error = outcome.error if outcome else None
        decision = outcome.decision if outcome else None
        retry_after = None
        if isinstance(error, _RETRY_AFTER):
            retry_after = error.retry_after
        await rt.state.record(Request(
            match.dialect.name,
            match.route.operation if match.route else None,
            scope["method"],
            short(scope["path"]),
            (view.id if view is not None else outcome.job_id if outcome else None)
            or match.params.get("job_id"),
            owner,
            outcome.reply.status if outcome else 499,
            now,
            time.time(),
            (time.perf_counter() - started) * 1000,
            view.phase if view is not None else (outcome.phase if outcome else None),
            str(decision.fault) if decision and decision.fault else None,
            retry_after,
            tuple(f"{v.field}: {v.rule}" for v in error.violations)
            if isinstance(error, InvalidRequest) else (),
            view.finished_at if view is not None else None,
        ))


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


def quiet(exchange: Exchange, passage: Passage) -> bool:
    """Nothing scripted, limited or configured for this request: no fault, nothing to draw."""
    return (passage.script is None and passage.wait is None
            and not exchange.rt.rules.armed(exchange.dialect.name, exchange.operation))


async def decided(exchange: Exchange, passage: Passage, phase: Phase | None) -> Decision:
    """The fault decision for a request whose gate answered ``passage`` (and its latency,
    waited out on the simulated clock)."""
    rt = exchange.rt
    if quiet(exchange, passage):
        return NO_FAULT
    decision = rt.rules.decide(passage, exchange.dialect.name, exchange.operation, phase,
                               rt.state.rng)
    if decision.delay > 0:
        await rt.park(exchange.now + decision.delay)
    return decision


def faulted(exchange: Exchange, decision: Decision, *, job_id: str | None = None,
            phase: Phase | None = None) -> Outcome | None:
    """The error answer of an error fault, or ``None`` (no fault, or one that spoils the body
    of the normal answer)."""
    if decision is NO_FAULT:
        return None
    error = error_of(decision)
    if error is None:
        return None
    return Outcome(exchange.dialect.render_error(error), job_id=job_id, phase=phase,
                   error=error, decision=decision)


def answer(exchange: Exchange, error: ApiError, **outcome: Any) -> Outcome:
    """A domain error, in the provider's shape."""
    return Outcome(exchange.dialect.render_error(error), error=error, **outcome)
