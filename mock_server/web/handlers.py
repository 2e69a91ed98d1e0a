"""Generic endpoints: authenticate → parse (dialect) → engine → render (dialect).

Domain errors are raised, not caught here; the app's exception table renders them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..dialects import Dialect, Reply
from ..errors import BodyTooLarge, MalformedBody, SyncTimeout, UnsupportedMediaType
from ..lifecycle import JobView
from ..scenarios import HEADER, apply_scenario, parse_scenario
from ..vocab import Operation
from .runtime import Runtime

__all__ = [
    "ENDPOINTS", "create_job", "decode_json", "encode_json", "encode_reply", "read_json", "respond",
]

Endpoint = Callable[[Runtime, Dialect, Request], Awaitable[Reply]]


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_json(body: Any) -> bytes:
    """A response body as compact UTF-8 JSON."""
    return _ENCODER.encode(body).encode()


def encode_reply(reply: Reply) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body exactly as :func:`respond`'s Starlette response sends them
    (for the raw-ASGI fast path; ``tests/web/test_fastpath.py`` holds the two together)."""
    body = b"" if reply.body is None else encode_json(reply.body)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in reply.headers.items()]
    names = {name for name, _ in headers}
    if b"content-length" not in names and not (reply.status < 200
                                                or reply.status in (204, 304)):
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
    if reply.body is not None and b"content-type" not in names:
        headers.append((b"content-type", b"application/json"))
    return reply.status, headers, body


def respond(reply: Reply) -> Response:
    """Encode a :class:`Reply` as a Starlette response."""
    if reply.body is None:
        return Response(status_code=reply.status, headers=dict(reply.headers))
    return Response(encode_json(reply.body), reply.status, dict(reply.headers),
                    "application/json")


async def read_json(request: Request, limit: int) -> Any:
    """The JSON body, or a domain error naming what is wrong with it."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        got = repr(media) if media else "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json; got {got}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return decode_json(b"".join(chunks))


def decode_json(raw: bytes) -> Any:
    """A request body parsed as JSON, or :class:`MalformedBody` saying why it is not."""
    if not raw.strip():
        raise MalformedBody("request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("request body is not UTF-8 text") from None
    try:
        return _DECODER.decode(text)
    except ValueError as exc:
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def create_job(
    rt: Runtime, dialect: Dialect, owner: str, body: Any, *, path_params: Mapping[str, str],
    query: Mapping[str, str], scenario: str | None,
) -> JobView:
    """Validate a submit body and create its job — the one way jobs are made.

    Everything that can refuse the request does so before anything random is drawn."""
    job_request = dialect.parse_submit(body, path_params=path_params, query=query)
    scenario = scenario or rt.engine.lifecycle.scenario
    if scenario:
        parse_scenario(scenario)  # refuse a bad header before drawing the plan
    plan = rt.engine.default_plan()
    if scenario:
        plan = apply_scenario(plan, scenario, backlog_drain=rt.engine.lifecycle.backlog_drain)
    return rt.engine.submit(
        provider=dialect.name,
        owner=owner,
        request=job_request,
        make_id=dialect.new_id,
        retention=dialect.retention,
        now=rt.clock.now(),
        plan=plan,
    )


async def submit(rt: Runtime, dialect: Dialect, request: Request) -> Reply:
    owner = rt.authenticate(request)
    body = await read_json(request, rt.config.server.max_body_bytes)
    query = request.query_params
    wait = dialect.sync_deadline(query)
    view = create_job(rt, dialect, owner, body, path_params=request.path_params, query=query,
                      scenario=request.headers.get(HEADER))
    request.state.job_id, request.state.view = view.id, view
    links = rt.links(request)
    if wait is None:
        return dialect.render_submit(view, links)
    view = await _wait_terminal(rt, dialect, view, owner, view.at + wait)
    request.state.view = view
    if not view.phase.terminal:
        raise SyncTimeout(view.id, wait, f"{links.base}/v1/jobs/{view.id}")
    return dialect.render_sync(view, links)


async def _wait_terminal(
    rt: Runtime, dialect: Dialect, view: JobView, owner: str, deadline: float
) -> JobView:
    """Wait on the (possibly fake) clock until the job ends or the deadline passes."""
    while not view.phase.terminal and view.at < deadline:
        end = view.record.end_at
        await rt.clock.sleep_until(min(deadline, end) if not math.isinf(end) else deadline)
        view = rt.engine.lookup(dialect.name, view.id, owner, rt.clock.now())
    return view


def _addressed(rt: Runtime, dialect: Dialect, request: Request) -> tuple[str, str]:
    """``(owner, job_id)`` of a request addressing one job: key and id shape checked."""
    owner = rt.authenticate(request)
    job_id = request.path_params["job_id"]
    dialect.check_id(job_id)
    return owner, job_id


def _job(rt: Runtime, dialect: Dialect, request: Request) -> JobView:
    owner, job_id = _addressed(rt, dialect, request)
    view = rt.engine.lookup(dialect.name, job_id, owner, rt.clock.now())
    request.state.view = view
    return view


async def status(rt: Runtime, dialect: Dialect, request: Request) -> Reply:
    view = rt.engine.note_poll(_job(rt, dialect, request))
    request.state.view = view
    return dialect.render_status(view, rt.links(request))


async def result(rt: Runtime, dialect: Dialect, request: Request) -> Reply:
    return dialect.render_result(_job(rt, dialect, request), rt.links(request))


async def content(rt: Runtime, dialect: Dialect, request: Request) -> Reply:
    view = _job(rt, dialect, request)
    return dialect.render_content(view, rt.links(request), request.query_params)


async def cancel(rt: Runtime, dialect: Dialect, request: Request) -> Reply:
    owner, job_id = _addressed(rt, dialect, request)
    outcome = rt.engine.cancel(
        dialect.name, job_id, owner, rt.clock.now(), allowed=dialect.cancellable
    )
    request.state.view = outcome.view
    return dialect.render_cancel(outcome, rt.links(request))


#: The generic flow behind each operation.
ENDPOINTS: dict[Operation, Endpoint] = {
    Operation.SUBMIT: submit,
    Operation.STATUS: status,
    Operation.RESULT: result,
    Operation.CONTENT: content,
    Operation.CANCEL: cancel,
}

