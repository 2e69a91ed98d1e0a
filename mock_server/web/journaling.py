"""ASGI middleware that writes every answered request into the journal.

Endpoints leave what they learnt in ``request.state`` (provider, operation, job id, the view
they rendered, an injected fault, a domain error); this middleware adds status, timing and
``Retry-After`` and records one entry. Admin requests are not journaled.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidRequest
from .admin import ADMIN_PREFIX
from .runtime import Runtime, bearer_key, owner_of

__all__ = ["JournalMiddleware"]


class JournalMiddleware:
    """Record each HTTP request in ``rt.journal`` (when the journal is enabled)."""

    def __init__(self, app: ASGIApp, rt: Runtime) -> None:
        self.app = app
        self.rt = rt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt = self.rt
        if (scope["type"] != "http" or not rt.config.journal.enabled
                or scope["path"].startswith(ADMIN_PREFIX)):
            await self.app(scope, receive, send)
            return
        arrived = rt.clock.now()
        started = time.perf_counter()
        answer: dict[str, Any] = {"status": 0, "retry_after": None}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"retry-after":
                        answer["retry_after"] = float(value)
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._record(scope, arrived, started, answer)

    def _record(self, scope: Scope, arrived: float, started: float,
                answer: dict[str, Any]) -> None:
        state = scope.get("state", {})
        view = state.get("view")
        error = state.get("error")
        violations = ([f"{v.field}: {v.rule}" for v in error.violations]
                      if isinstance(error, InvalidRequest) else [])
        self.rt.journal.record(
            provider=state.get("provider"),
            operation=state.get("operation"),
            method=scope["method"],
            path=scope["path"],
            job_id=state.get("job_id") or (view.id if view is not None else None),
            key=state["owner"] if "owner" in state else _key(scope),
            status=answer["status"],
            sim_time=arrived,
            real_time=time.time(),
            duration_ms=(time.perf_counter() - started) * 1000,
            phase=view.phase if view is not None else state.get("phase"),
            fault=state.get("fault"),
            retry_after=answer["retry_after"],
            violations=violations,
        )


def _key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            key = bearer_key(value.decode("latin-1"))
            return owner_of(key) if key else None
    return None
