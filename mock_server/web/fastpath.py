"""Raw-ASGI fast paths in front of Starlette for the two requests load tests repeat.

A load test is mostly async submits and status polls that nothing special happens to: a valid
key, a well-formed body or an existing job of that key, and no fault, rate limit or latency that
could act on the endpoint. :class:`FastPath` answers exactly those without Starlette's routing,
middleware and request objects, through the *same* calls as the full stack —
``handlers.create_job`` → ``dialect.render_submit``, ``engine.view`` → ``dialect.render_status``,
``handlers.respond`` — and journals them with the same ``journal.record`` call.

Anything else — a missing or refused key, a body that is not valid JSON or breaks the schema, a
sync-mode submit, an unknown or malformed id, another key's job, a job scripted to end at the
N-th poll, a dialect that answers an error, any fault machinery that could act — is handed to the
full app before anything was sent or changed (a body already read is replayed to it), and the full
app answers. ``tests/web/test_fastpath.py`` checks both ways give byte-identical responses and
journals.

Status bodies are memoised per job while its phase cannot change
(:func:`~wanmock.server.lifecycle.next_change`) and, while queued, its position stays the same:
records are immutable, so a cancel or reschedule makes a new record and misses the memo. The
memo is bounded (oldest out first).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope, Send

from ..dialects import Dialect, Reply
from ..errors import InjectedFault
from ..lifecycle import JobRecord, JobView, next_change
from ..scenarios import HEADER
from ..vocab import Operation, Phase
from .handlers import create_job, decode_json, encode_reply
from .runtime import Runtime, bearer_key

__all__ = ["FastPath", "PathTemplate"]

log = logging.getLogger("wanmock")

_SCENARIO = HEADER.lower().encode()
_UNSEEN: Any = object()


class PathTemplate(NamedTuple):
    """A route path with at most one parameter, at the end or between a prefix and a suffix."""

    prefix: str
    name: str | None
    #: The parameter may contain ``/`` (Starlette's ``:path`` converter).
    slashes: bool
    suffix: str

    @classmethod
    def parse(cls, path: str) -> PathTemplate | None:
        """The template of ``path``, or ``None`` if it has several parameters or a converter
        other than ``str``/``path``."""
        prefix, brace, rest = path.partition("{")
        if not brace:
            return cls(path, None, False, "")
        spec, _, suffix = rest.partition("}")
        name, _, converter = spec.partition(":")
        if "{" in suffix or converter not in ("", "str", "path"):
            return None
        return cls(prefix, name, converter == "path", suffix)

    def match(self, path: str) -> str | None:
        """The parameter's value ('' if there is none), or ``None`` if ``path`` does not match."""
        if self.name is None:
            return "" if path == self.prefix else None
        if not (path.startswith(self.prefix) and path.endswith(self.suffix)):
            return None
        value = path[len(self.prefix):len(path) - len(self.suffix)]
        if not value or (not self.slashes and "/" in value):
            return None
        return value


class _Call(NamedTuple):
    path: str
    template: PathTemplate
    dialect: Dialect
    #: The path parameter's value ('' if the route has none).
    param: str
    headers: dict[bytes, bytes]
    owner: str


class _Memo(NamedTuple):
    record: JobRecord
    base: str
    since: float
    until: float
    phase: Phase
    position: int | None
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _routes(rt: Runtime, operation: Operation, method: str) -> list[tuple[PathTemplate, Dialect]]:
    found = []
    for dialect in rt.dialects.values():
        for route in dialect.routes:
            if route.operation is operation and route.method == method:
                template = PathTemplate.parse(route.path)
                if template is not None:
                    found.append((template, dialect))
    return found


def _match(routes: list[tuple[PathTemplate, Dialect]],
           path: str) -> tuple[PathTemplate, Dialect, str] | None:
    for template, dialect in routes:
        value = template.match(path)
        if value is not None:
            return template, dialect, value
    return None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers by (lower-case) name; the first one wins, as in Starlette."""
    return dict(reversed(scope["headers"]))


class FastPath:
    """Answers plain async submits and status polls of every dialect; see the module docstring."""

    def __init__(self, rt: Runtime, *, capacity: int = 16_384) -> None:
        self.rt = rt
        self.capacity = capacity
        self.polls = _routes(rt, Operation.STATUS, "GET")
        self.submits = _routes(rt, Operation.SUBMIT, "POST")
        self._memo: dict[str, _Memo] = {}
        self._queries: dict[bytes, Mapping[str, str]] = {}
        self._seen: dict[Operation, dict[str, tuple[PathTemplate, Dialect, str] | None]] = {
            Operation.STATUS: {}, Operation.SUBMIT: {}}
        self._keys: dict[bytes, Any] = {}
        #: Requests answered here, by operation (the rest went to the full app).
        self.answered = dict.fromkeys((Operation.SUBMIT, Operation.STATUS), 0)

    def _call(self, routes: list[tuple[PathTemplate, Dialect]], operation: Operation,
              scope: Scope) -> _Call | None:
        """The request's route, its parameter, headers and owner, if this path may answer it."""
        path: str = scope["path"]
        seen = self._seen[operation]  # clients repeat the same few paths: remember the matches
        match = seen.get(path, _UNSEEN)
        if match is _UNSEEN:
            if len(seen) >= self.capacity:
                seen.clear()
            match = seen[path] = _match(routes, path)
        if match is None:
            return None
        template, dialect, value = match
        headers = _headers(scope)
        owner = self._owner(dialect.name, operation, scope, headers)
        if owner is None:
            return None
        return _Call(path, template, dialect, value, headers, owner)

    def _owner(self, provider: str, operation: Operation, scope: Scope,
               headers: Mapping[bytes, bytes]) -> str | None:
        """The caller's owner token if the full app would accept the key and decide no fault."""
        rt = self.rt
        if scope.get("root_path") or not rt.faults.inert(provider, operation):
            return None
        authorization = headers.get(b"authorization")
        if authorization is None:
            return None
        key = self._keys.get(authorization, _UNSEEN)
        if key is _UNSEEN:
            if len(self._keys) >= 4096:
                self._keys.clear()
            key = self._keys[authorization] = bearer_key(authorization.decode("latin-1"))
        if key is None or not rt.accepts(key):
            return None
        return rt.owner(key)

    def _base(self, scope: Scope, headers: Mapping[bytes, bytes]) -> str:
        host = headers.get(b"host")
        return self.rt.base_for(scope, host.decode("latin-1") if host else None)

    async def _answer(
        self, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, *,
        provider: str, operation: Operation, path: str, method: str, job_id: str, owner: str,
        phase: Phase, arrived: float, started: float,
    ) -> None:
        self.answered[operation] += 1
        rt = self.rt
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            if rt.config.journal.enabled:
                rt.journal.record(
                    provider=provider, operation=operation, method=method, path=path,
                    job_id=job_id, key=owner, status=status, sim_time=arrived,
                    real_time=time.time(), duration_ms=(time.perf_counter() - started) * 1000,
                    phase=phase,
                )

    # -- GET: status polls ------------------------------------------------------------------

    async def get(self, scope: Scope, send: Send) -> bool:
        """Answer a GET if it is a plain status poll; ``False``: nothing was sent or changed."""
        started = time.perf_counter()
        call = self._call(self.polls, Operation.STATUS, scope)
        if call is None:
            return False
        path, _, dialect, job_id, headers, owner = call
        rt = self.rt
        record = rt.engine.store.get(job_id)
        if (record is None or record.owner != owner or record.provider != dialect.name
                or record.end_after_polls is not None):
            return False
        now = rt.clock.now()
        base = self._base(scope, headers)
        memo = self._memo.get(job_id)
        if (memo is None or memo.record is not record or memo.base != base
                or not memo.since <= now < memo.until
                or (memo.position is not None
                    and memo.position != rt.engine.position(record, now))):
            try:
                memo = self._render_status(dialect, record, base, now)
            except Exception:  # an error answer, or a bug: the full app renders either
                return False
        await self._answer(send, memo.status, memo.headers, memo.body, provider=dialect.name,
                           operation=Operation.STATUS, path=path, method="GET", job_id=job_id,
                           owner=owner, phase=memo.phase, arrived=now, started=started)
        return True

    def _render_status(self, dialect: Dialect, record: JobRecord, base: str,
                       now: float) -> _Memo:
        view = self.rt.engine.view(record, now)
        status, headers, body = encode_reply(dialect.render_status(view, self.rt.links_for(base)))
        memo = _Memo(record, base, now, next_change(record, now), view.phase,
                     view.queue_position, status, headers, body)
        if record.id not in self._memo and len(self._memo) >= self.capacity:
            del self._memo[next(iter(self._memo))]
        self._memo[record.id] = memo
        return memo

    # -- POST: async submits -----------------------------------------------------------------

    async def post(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer a POST if it is a plain async submit: ``None``. Otherwise nothing was sent or
        changed, and the result is the ``receive`` the full app must use (it replays what was
        read of the body)."""
        started = time.perf_counter()
        call = self._call(self.submits, Operation.SUBMIT, scope)
        if call is None:
            return receive
        path, template, dialect, param, headers, owner = call
        rt = self.rt
        limit = rt.config.server.max_body_bytes
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        declared = headers.get(b"content-length", b"")
        if media != b"application/json" or (declared.isdigit() and int(declared) > limit):
            return receive
        arrived = rt.clock.now()
        read: list[Message] = []
        size = 0
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                return _replay(read, receive)
            size += len(message.get("body", b""))
            if size > limit:
                return _replay(read, receive)
            if not message.get("more_body", False):
                break
        raw = b"".join(m.get("body", b"") for m in read)
        query = self._query(scope.get("query_string", b""))
        scenario = headers.get(_SCENARIO)
        try:
            if dialect.sync_deadline(query) is not None:
                return _replay(read, receive)
            view = create_job(rt, dialect, owner, decode_json(raw),
                              path_params={template.name: param} if template.name else {},
                              query=query,
                              scenario=scenario.decode("latin-1") if scenario else None)
        except Exception:  # refused (the full app says why), or a bug (it renders a 500)
            return _replay(read, receive)
        status, reply_headers, body = encode_reply(
            self._render(dialect, view, self._base(scope, headers), scope))
        await self._answer(send, status, reply_headers, body, provider=dialect.name,
                           operation=Operation.SUBMIT, path=path, method="POST", job_id=view.id,
                           owner=owner, phase=view.phase, arrived=arrived, started=started)
        return None

    def _query(self, query_string: bytes) -> Mapping[str, str]:
        """The query parameters as Starlette reads them (the last value of a name wins);
        remembered, since clients send the same few query strings over and over."""
        query = self._queries.get(query_string)
        if query is None:
            if len(self._queries) >= 256:
                self._queries.clear()
            query = self._queries[query_string] = MappingProxyType(dict(
                parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)))
        return query

    def _render(self, dialect: Dialect, view: JobView, base: str, scope: Scope) -> Reply:
        """The submit answer; the job exists now, so a rendering bug becomes a provider 500."""
        try:
            return dialect.render_submit(view, self.rt.links_for(base))
        except Exception as exc:
            log.exception("wanmock bug while serving %s %s", scope["method"], scope["path"])
            return dialect.render_error(InjectedFault(
                500, f"wanmock internal error ({type(exc).__name__}); this is a bug"))


def _replay(read: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives back the messages already read, then reads on."""
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
