"""Applying a fault decision to one response — the only place faults touch HTTP.

Error faults (429/5xx) are raised as domain errors before the endpoint runs, so nothing is
created; body faults (malformed, truncated, empty, drop) corrupt the real answer after it ran —
like a proxy that loses a response the upstream already acted on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import ApiError, InjectedFault, RateLimited
from ..faults import Decision
from ..lifecycle import state_at
from ..vocab import FaultKind, Operation, Phase
from .runtime import Runtime

__all__ = ["ConnectionDropped", "guarded"]


class ConnectionDropped(Exception):
    """Raised after the headers of a ``drop`` fault were sent: the server closes the socket."""


class _DroppedResponse(Response):
    """Sends the status line and headers and part of the body, then fails mid-stream."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2],
                    "more_body": True})
        raise ConnectionDropped("wanmock dropped the connection (fault: drop)")


async def guarded(
    rt: Runtime,
    request: Request,
    *,
    provider: str,
    operation: Operation,
    job_id: str | None,
    produce: Callable[[], Awaitable[Response]],
    render_error: Callable[[ApiError], Response],
) -> Response:
    """Run ``produce`` under whatever fault the injector decides for this request."""
    now = rt.clock.now()
    phase = _peek(rt, job_id, now)
    key = rt.owner_or_none(request) or ""
    decision = rt.faults.decide(provider, operation, phase, key, now)
    state = request.state
    state.provider, state.operation, state.job_id = provider, operation, job_id
    state.phase = phase
    if decision.fault is not None:
        state.fault = str(decision.fault)
    if decision.delay > 0:
        await rt.clock.sleep_until(now + decision.delay)
    error = _as_error(decision)
    if error is not None:
        state.error = error
        return render_error(error)
    response = await produce()
    return _corrupt(response, decision.fault)


def _peek(rt: Runtime, job_id: str | None, now: float) -> Phase | None:
    record = rt.engine.store.get(job_id) if job_id else None
    return state_at(record, now).phase if record is not None else None


def _as_error(decision: Decision) -> ApiError | None:
    fault = decision.fault
    if fault is None or fault.status is None:
        return None
    if fault is FaultKind.HTTP_429:
        return RateLimited(decision.retry_after or 1.0, "rate limit exceeded (wanmock: "
                           f"{decision.source}); retry after {decision.retry_after or 1:g} s")
    reason = HTTPStatus(fault.status).phrase
    return InjectedFault(fault.status, f"{reason} (injected by wanmock: {fault})",
                         retry_after=decision.retry_after)


def _corrupt(response: Response, fault: FaultKind | None) -> Response:
    if fault is None or fault.status is not None or fault is FaultKind.TIMEOUT:
        return response
    body = bytes(response.body)
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    if fault is FaultKind.DROP:
        return _DroppedResponse(body, response.status_code, headers)
    if fault is FaultKind.EMPTY_BODY:
        body = b""
    elif fault is FaultKind.TRUNCATED_JSON:
        body = body[: len(body) // 2]
    elif fault is FaultKind.MALFORMED_JSON:
        body = body[:-1] + b",}" if body.endswith(b"}") else body + b"}"
    return Response(body, response.status_code, headers)
