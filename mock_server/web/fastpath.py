"""The status-poll fast path: raw ASGI in front of Starlette for the request load tests repeat.

A load test is mostly ``GET`` polls of jobs that exist, by their owner, on which no fault, rate
limit or latency is configured. :class:`FastPoll` answers exactly those without Starlette's
routing, middleware and request objects, through the *same* core and dialect calls as the full
stack (``engine.view`` → ``dialect.render_status``), and journals them with the same
``journal.record`` call. Anything else — a missing or refused key, an unknown or malformed id,
another owner's job, a job scripted to end at the N-th poll, a dialect that answers an error,
any fault machinery that could act — returns ``False`` having sent nothing, and the full app
answers. ``tests/web/test_fastpath.py`` checks both paths give byte-identical responses and
journal entries.

Rendered bodies are memoised per job while its phase cannot change
(:func:`~mock_server.lifecycle.next_change`) and, while queued, its position stays the same:
records are immutable, so a cancel or reschedule makes a new record and misses the memo. The
memo is bounded (oldest out first).
"""

from __future__ import annotations

import time
from typing import NamedTuple

from starlette.types import Scope, Send

from ..dialects import Dialect
from ..lifecycle import JobRecord, next_change
from ..vocab import Operation, Phase
from .handlers import encode_json
from .runtime import Runtime, base_url, bearer_key

__all__ = ["FastPoll"]

_STATUS = Operation.STATUS


class _Memo(NamedTuple):
    record: JobRecord
    base: str
    since: float
    until: float
    phase: Phase
    position: int | None
    body: bytes
    headers: list[tuple[bytes, bytes]]


class FastPoll:
    """Answers plain status polls of every dialect; see the module docstring."""

    def __init__(self, rt: Runtime, *, capacity: int = 16_384) -> None:
        self.rt = rt
        self.capacity = capacity
        #: ``(path prefix, path suffix, dialect)`` of each status route with one ``{job_id}``.
        self.routes: list[tuple[str, str, Dialect]] = []
        for dialect in rt.dialects.values():
            for route in dialect.routes:
                if route.operation is _STATUS and route.method == "GET":
                    prefix, _, suffix = route.path.partition("{job_id}")
                    if "{" not in prefix + suffix:
                        self.routes.append((prefix, suffix, dialect))
        self._memo: dict[str, _Memo] = {}
        #: Requests answered here (the rest went to the full app).
        self.answered = 0

    async def __call__(self, scope: Scope, send: Send) -> bool:
        """Answer ``scope`` (a GET) if it is a plain status poll; ``False``: nothing was sent."""
        path: str = scope["path"]
        match = self._match(path)
        if match is None:
            return False
        dialect, job_id = match
        rt = self.rt
        if scope.get("root_path") or not rt.faults.inert(dialect.name, _STATUS):
            return False
        started = time.perf_counter()
        authorization = host = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"host":
                host = value
        if authorization is None:
            return False
        key = bearer_key(authorization.decode("latin-1"))
        accepted = rt.config.server.api_keys
        if key is None or (accepted and key not in accepted):
            return False
        owner = rt.owner(key)
        record = rt.engine.store.get(job_id)
        if (record is None or record.owner != owner or record.provider != dialect.name
                or record.end_after_polls is not None):
            return False
        now = rt.clock.now()
        base = rt.config.server.public_base_url or base_url(
            scope, host.decode("latin-1") if host else None)
        memo = self._memo.get(job_id)
        if (memo is None or memo.record is not record or memo.base != base
                or not memo.since <= now < memo.until
                or (memo.position is not None
                    and memo.position != rt.engine.position(record, now))):
            try:
                memo = self._render(dialect, record, base, now)
            except Exception:  # an error answer, or a bug: the full app renders either
                return False
        self.answered += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": memo.headers})
            await send({"type": "http.response.body", "body": memo.body})
        finally:
            if rt.config.journal.enabled:
                rt.journal.record(
                    provider=dialect.name, operation=_STATUS, method="GET", path=path,
                    job_id=job_id, key=owner, status=200, sim_time=now, real_time=time.time(),
                    duration_ms=(time.perf_counter() - started) * 1000, phase=memo.phase,
                )
        return True

    def _match(self, path: str) -> tuple[Dialect, str] | None:
        """The dialect and job id of a status-poll path, if it is one."""
        for prefix, suffix, dialect in self.routes:
            if path.startswith(prefix) and path.endswith(suffix):
                job_id = path[len(prefix):len(path) - len(suffix)]
                if job_id and "/" not in job_id:
                    return dialect, job_id
        return None

    def _render(self, dialect: Dialect, record: JobRecord, base: str, now: float) -> _Memo:
        view = self.rt.engine.view(record, now)
        reply = dialect.render_status(view, self.rt.links_for(base))
        if reply.status != 200 or reply.headers:
            raise LookupError("not a plain 200: the full app answers")
        body = encode_json(reply.body)
        headers = [(b"content-length", str(len(body)).encode()),
                   (b"content-type", b"application/json")]
        until = next_change(record, now)
        memo = _Memo(record, base, now, until, view.phase, view.queue_position, body, headers)
        if record.id not in self._memo and len(self._memo) >= self.capacity:
            del self._memo[next(iter(self._memo))]
        self._memo[record.id] = memo
        return memo
