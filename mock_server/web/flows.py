"""The generic flow behind each operation: gate → fault decision → authenticate → parse →
engine → render. One function per operation, shared by every provider; a dialect is consulted at
each step. Domain errors are raised inside and answered in the provider's shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from ..dialects import (
    Contents,
    Listing,
    Reply,
    Results,
    SubmitInput,
    Synchronous,
    retry_after_header,
)
from ..engine import Engine, Plan
from ..errors import (
    ApiError,
    AuthError,
    BudgetExceeded,
    InvalidRequest,
    JobNotFound,
    MalformedId,
    SyncTimeout,
    Violation,
)
from ..faults import Decision
from ..ids import diagnose
from ..images import ImageKey, s3_error_xml
from ..lifecycle import JobView, PollDriven, state_at
from ..scenarios import HEADER, apply_scenario, parse_scenario
from ..state import Stored
from ..vocab import Operation, Phase
from .bodies import decode_json, read_body
from .edge import NO_FAULT, Exchange, Flow, Outcome, answer, decided, faulted, quiet

__all__ = ["FLOWS"]

_SCENARIO = HEADER.lower()


def authenticate(exchange: Exchange) -> str:
    """The caller's owner hash, or :class:`AuthError` saying what is wrong with the header."""
    if "authorization" not in exchange.headers:
        raise AuthError("missing Authorization header; send 'Authorization: Bearer <key>'")
    if exchange.key is None or exchange.owner is None:
        raise AuthError("malformed Authorization header; expected 'Bearer <key>'")
    if not exchange.rt.accepts(exchange.key):
        raise AuthError("invalid API key")
    return exchange.owner


def plan_for(exchange: Exchange) -> Plan:
    """The job's fate: drawn from the lifecycle, reshaped by the scenario header. A bad header
    is refused before anything random is drawn."""
    rt = exchange.rt
    lifecycle = rt.config.lifecycle
    scenario = exchange.headers.get(_SCENARIO) or lifecycle.scenario
    if scenario:
        parse_scenario(scenario)
    plan = rt.engine.plan(lifecycle)
    if scenario:
        plan = apply_scenario(plan, scenario, backlog_drain=lifecycle.backlog_drain)
    return plan


async def submit(exchange: Exchange) -> Outcome:
    rt, dialect = exchange.rt, exchange.dialect
    gate = exchange.gate()
    decision = None
    if rt.rules.armed(dialect.name, Operation.SUBMIT):  # rules draw between gate and create
        decision = await decided(exchange, await rt.state.passage(gate, exchange.now), None)
        if (refused := faulted(exchange, decision)) is not None:
            return refused
    try:
        owner = authenticate(exchange)
        headers = exchange.headers
        raw = await read_body(exchange.receive, media=headers.get("content-type", "").encode(
            "latin-1"), declared=headers.get("content-length", "").encode("latin-1"),
            limit=rt.config.server.max_body_bytes,
            encoding=headers.get("content-encoding", "").encode("latin-1"))
        submitted = SubmitInput(decode_json(raw), exchange.params, exchange.query, headers)
        request = dialect.parse_submit(submitted)
        limit = rt.config.limits.prompt_chars
        if len(request.prompt) > limit:
            where = ".".join(dialect.client.prompt_field)
            raise InvalidRequest([Violation(where, "maxLength", (
                f"{where} is {len(request.prompt)} characters; this fake keeps at most {limit} "
                "(limits.prompt_chars)"))])
        wait = dialect.sync_deadline(submitted)
        plan = plan_for(exchange)
    except ApiError as error:
        if decision is None:  # the gate comes first, whatever is wrong with the request
            decision = await decided(exchange, await rt.state.passage(gate, exchange.now), None)
            if (refused := faulted(exchange, decision)) is not None:
                return refused
        return answer(exchange, error, decision=decision)
    try:
        passage, view = await rt.engine.submit(
            provider=dialect.name, owner=owner, request=request, make_id=dialect.new_id,
            retention=dialect.retention, now=exchange.now, plan=plan,
            lifecycle=rt.config.lifecycle, gate=None if decision is not None else gate,
            budget=rt.config.limits.key_bytes)
    except BudgetExceeded as error:
        return answer(exchange, error, decision=decision)
    if decision is None:
        decision = await decided(exchange, passage, None)
        if (refused := faulted(exchange, decision)) is not None:
            return refused
    assert view is not None  # the gate did not block
    links = rt.links_for(exchange.base)
    if wait is None:
        return Outcome(dialect.render_submit(view, links), view=view, decision=decision)
    assert isinstance(dialect, Synchronous)
    view = await _wait_terminal(rt.engine, exchange, view, owner, exchange.now + wait)
    if not view.phase.terminal:
        late = SyncTimeout(view.id, wait, dialect.polling_url(links.base, view.id),
                           dialect.async_hint)
        return answer(exchange, late, view=view, decision=decision)
    return Outcome(dialect.render_sync(view, links), view=view, decision=decision)


async def _wait_terminal(engine: Engine, exchange: Exchange, view: JobView, owner: str,
                         deadline: float) -> JobView:
    """Wait on the (possibly fake) clock until the job ends or the deadline passes."""
    rt = exchange.rt
    clock = rt.clock
    while not view.phase.terminal and view.at < deadline:
        end = view.record.end_at
        await rt.park(min(deadline, end) if not math.isinf(end) else deadline)
        view = await engine.lookup(exchange.dialect.name, view.id, owner, clock.now())
    return view


class _Addressed(NamedTuple):
    stored: Stored
    view: JobView
    decision: Decision


async def _addressed(exchange: Exchange) -> _Addressed | Outcome:
    """Gate, fault decision, key, id and visibility of a request that names one job."""
    rt, dialect = exchange.rt, exchange.dialect
    job_id = exchange.params["job_id"]
    gate = exchange.gate()
    try:
        if not exchange.route.well_formed("job_id", job_id):
            dialect.parse_id(job_id)  # raises the provider's own words for it
    except MalformedId as malformed:
        decision = await decided(exchange, await rt.state.passage(gate, exchange.now), None)
        if (refused := faulted(exchange, decision)) is not None:
            return refused
        try:
            authenticate(exchange)  # a bad key is the first thing to say
        except AuthError as error:
            return answer(exchange, error, decision=decision)
        return answer(exchange, malformed, decision=decision)
    read = await rt.state.read(job_id, exchange.now, gate)
    stored = read.stored
    view = rt.engine.view(stored, exchange.now) if stored is not None else None
    phase = view.phase if view is not None else None
    decision = (NO_FAULT if quiet(exchange, read.passage)
                else await decided(exchange, read.passage, phase))
    if (refused := faulted(exchange, decision, job_id=job_id, phase=phase)) is not None:
        return refused
    try:
        owner = authenticate(exchange)
        if stored is None or view is None:
            raise JobNotFound(job_id, reason=diagnose(dialect.parse_id(job_id),
                                                      tag=rt.state.identity.tag))
        stored = rt.engine.visible(stored, dialect.name, job_id, owner)
    except ApiError as error:
        return answer(exchange, error, job_id=job_id, phase=phase, decision=decision)
    return _Addressed(stored, view, decision)


async def status(exchange: Exchange) -> Outcome:
    found = await _addressed(exchange)
    if isinstance(found, Outcome):
        return found
    rt = exchange.rt
    stored = found.stored
    view = found.view
    if isinstance(stored.record.schedule, PollDriven):  # the only jobs a poll changes
        stored = await rt.engine.note_poll(stored, exchange.now)
        view = rt.engine.view(stored, exchange.now)
    decision = found.decision
    try:
        reply = rt.memo.status(exchange.dialect, rt.links_for(exchange.base), exchange.now,
                               stored, view)
    except ApiError as error:
        return answer(exchange, error, view=view, decision=decision)
    return Outcome(reply.reply, view=view, decision=decision, encoded=reply.encoded)


async def result(exchange: Exchange) -> Outcome:
    found = await _addressed(exchange)
    if isinstance(found, Outcome):
        return found
    dialect = exchange.dialect
    assert isinstance(dialect, Results)
    decision = found.decision
    try:
        reply = dialect.render_result(found.view, exchange.rt.links_for(exchange.base))
    except ApiError as error:
        return answer(exchange, error, view=found.view, decision=decision)
    return Outcome(reply, view=found.view, decision=decision)


async def content(exchange: Exchange) -> Outcome:
    found = await _addressed(exchange)
    if isinstance(found, Outcome):
        return found
    dialect = exchange.dialect
    assert isinstance(dialect, Contents)
    decision = found.decision
    reply = dialect.render_content(found.view, exchange.rt.links_for(exchange.base),
                                   exchange.query)
    return Outcome(reply, view=found.view, decision=decision)


async def cancel(exchange: Exchange) -> Outcome:
    found = await _addressed(exchange)
    if isinstance(found, Outcome):
        return found
    rt, dialect = exchange.rt, exchange.dialect
    decision = found.decision
    record = found.stored.record
    try:
        done = await rt.engine.cancel(dialect.name, record.id, record.owner, exchange.now,
                                      allowed=dialect.cancellable)
        reply = dialect.render_cancel(done, rt.links_for(exchange.base))
    except ApiError as error:
        return answer(exchange, error, view=found.view, decision=decision)
    return Outcome(reply, view=done.view, decision=decision)


async def listing(exchange: Exchange) -> Outcome:
    """The caller's jobs, a page at a time: gate → fault → authenticate → parse → the state
    (one bounded read of the owner's jobs) → render."""
    rt, dialect = exchange.rt, exchange.dialect
    assert isinstance(dialect, Listing)
    decision = await decided(exchange, await rt.state.passage(exchange.gate(), exchange.now),
                             None)
    if (refused := faulted(exchange, decision)) is not None:
        return refused
    try:
        owner = authenticate(exchange)
        asked = dialect.parse_list(exchange.query, exchange.now)
    except ApiError as error:
        return answer(exchange, error, decision=decision)
    now = exchange.now
    page = await rt.state.jobs_of(dialect.name, owner, now, offset=asked.offset,
                                  limit=asked.limit, since=asked.since, until=asked.until,
                                  phases=asked.phases, model=asked.model)
    views = [rt.engine.view(stored, now) for stored in page.stored]
    reply = dialect.render_list(views, page.total, asked, rt.links_for(exchange.base))
    return Outcome(reply, decision=decision)


async def download(exchange: Exchange) -> Outcome:
    """``GET /files/{provider}/{job_id}/{index}.png``: an image behind a pre-signed-style URL.

    No bearer key (like S3 pre-signed URLs and public CDN links): the signature and its expiry
    are checked first, and every refusal is S3-shaped XML."""
    rt = exchange.rt
    params = exchange.params
    job_id, raw_index = params["job_id"], params["index"]
    read = await rt.state.read(job_id, exchange.now, exchange.gate())
    stored = read.stored
    phase = state_at(stored.record, exchange.now).phase if stored is not None else None
    decision = await decided(exchange, read.passage, phase)
    if decision.fault is not None and decision.fault.status is not None:
        status = decision.fault.status
        code = "SlowDown" if status == 429 else "ServiceUnavailable"
        headers = ({"retry-after": retry_after_header(decision.retry_after)}
                   if decision.retry_after is not None else {})
        return Outcome(_xml(status, code, f"injected by wanmock: {decision.fault}", headers),
                       job_id=job_id, phase=phase, decision=decision)
    refusal = rt.signer.check(exchange.path, dict(exchange.query), now=exchange.now)
    if refusal is not None:
        return Outcome(_xml(403, *refusal), job_id=job_id, phase=phase, decision=decision)
    index = int(raw_index) if raw_index.isascii() and raw_index.isdigit() else -1
    record = stored.record if stored is not None else None
    if (record is None or record.provider != exchange.dialect.name
            or not 0 <= index < record.images):
        return Outcome(_xml(404, "NoSuchKey", "The specified key does not exist."),
                       job_id=job_id, phase=phase, decision=decision)
    view = state_at(record, exchange.now)
    if view.phase is not Phase.SUCCEEDED:
        return Outcome(_xml(404, "NoSuchKey", "The specified key does not exist."),
                       job_id=job_id, phase=phase, decision=decision)
    req = record.request
    png = await rt.renderer.render_async(
        ImageKey(record.seed, req.prompt, req.width, req.height, index))
    return Outcome(Reply(200, png, {"cache-control": "private, max-age=604800",
                                    "content-type": "image/png"}),
                   view=view, decision=decision)


def _xml(status: int, code: str, message: str,
         headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, s3_error_xml(code, message),
                 {"content-type": "application/xml", **(headers or {})})


#: The flow behind each operation.
FLOWS: Mapping[Operation, Flow] = {
    Operation.SUBMIT: submit,
    Operation.STATUS: status,
    Operation.RESULT: result,
    Operation.CONTENT: content,
    Operation.CANCEL: cancel,
    Operation.DOWNLOAD: download,
    Operation.LIST: listing,
}
