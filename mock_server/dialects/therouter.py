"""TheRouter (api.therouter.ai): OpenAI-style async image jobs, ``img_`` ids, 7-day expiry.

Documented: submit ``POST /v1/images/generations?async=true`` → 202 job; poll ``GET /v1/jobs/{id}``;
download ``GET /v1/jobs/{id}/content`` → 302. Assumed (README, "Assumptions"): both cancel forms,
the error bodies, 409 for content before success, the sync-mode answer and its 504.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ulid import base32

from ..config import DAY
from ..engine import CancelResult
from ..errors import (
    ApiError,
    InjectedFault,
    InvalidRequest,
    JobNotFound,
    MalformedId,
    NotCancellable,
    NotReady,
    UnknownModel,
    Violation,
)
from ..ids import new_id
from ..lifecycle import JobRequest, JobView
from ..vocab import FailureKind, Phase
from .base import (
    ClientFacts,
    Endpoint,
    Links,
    Operation,
    Reply,
    Route,
    SubmitInput,
    compact_json,
    error_headers,
    error_responses,
    schema_violations,
)

__all__ = ["SizeSyntax", "TheRouter", "TheRouterOptions"]


class SizeSyntax(enum.StrEnum):
    """Which ``size`` spellings TheRouter's fake accepts."""

    X = "x"  #: OpenAI style "1024x1024", as in TheRouter's guide (default)
    X_OR_STAR = "x-or-star"  #: also DashScope's "1024*1024"


@dataclass(frozen=True, slots=True, kw_only=True)
class TheRouterOptions:
    """``[therouter]``: choices where TheRouter's docs are silent or disagree (README,
    "Assumptions")."""

    #: ``expires_at - created_at``: 604800 s = 7 days, from the documented example.
    retention: float = 7 * DAY
    #: The edge deadline for synchronous (no ``async=true``) requests.
    sync_deadline: float = 100.0
    size_syntax: SizeSyntax = SizeSyntax.X
    #: Whether ``in_progress`` jobs may be cancelled (undocumented; upstream allows queued only).
    cancel_running: bool = False
    #: Reject body fields that the model page does not list (``quality``, ``negative_prompt``...).
    reject_unknown_fields: bool = True

MODEL = "wan/wan2.2-t2i-flash"
_ID = re.compile(r"^img_[0-9A-Za-z]{26}\Z")
_STATUS = {
    Phase.QUEUED: "queued",
    Phase.RUNNING: "in_progress",
    Phase.SUCCEEDED: "succeeded",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "cancelled",
    Phase.EXPIRED: "expired",
}
_JOB = "therouter/job"
_ERROR = "therouter/error"
_JOB_ID = {"job_id": {"type": "string", "pattern": "^img_[0-9A-Za-z]{26}$"}}
_ASYNC_QUERY = {"async": ({"type": "string", "enum": ["true", "false"]},
                          "true: answer 202 with a job at once; otherwise wait (sync mode)")}

#: Domain error kind -> (HTTP status, OpenAI error type, code).
_ERRORS: dict[str, tuple[int, str, str]] = {
    "auth": (401, "authentication_error", "invalid_api_key"),
    "malformed_body": (400, "invalid_request_error", "invalid_json"),
    "unsupported_media_type": (415, "invalid_request_error", "unsupported_media_type"),
    "body_too_large": (413, "invalid_request_error", "request_too_large"),
    "invalid_request": (400, "invalid_request_error", "invalid_request"),
    "unknown_model": (404, "invalid_request_error", "model_not_found"),
    "malformed_id": (404, "invalid_request_error", "not_found"),
    "job_not_found": (404, "invalid_request_error", "not_found"),
    "job_forbidden": (404, "invalid_request_error", "not_found"),
    "not_ready": (409, "invalid_request_error", "job_not_ready"),
    "not_cancellable": (409, "invalid_request_error", "job_not_cancellable"),
    "sync_timeout": (504, "server_error", "timeout"),
    "method_not_allowed": (405, "invalid_request_error", "method_not_allowed"),
    "rate_limited": (429, "rate_limit_error", "rate_limit_exceeded"),
    "budget_exceeded": (429, "rate_limit_error", "storage_budget_exceeded"),
    "injected_fault": (500, "server_error", "upstream_error"),
    "state_unavailable": (503, "server_error", "service_unavailable"),
    "route_not_found": (404, "invalid_request_error", "not_found"),
}
#: How a failed job's error reads, by failure kind: (type, code).
_FAILURES = {
    FailureKind.MODERATION: ("invalid_request_error", "content_policy_violation"),
    FailureKind.INTERNAL: ("server_error", "upstream_error"),
    FailureKind.TIMEOUT: ("server_error", "upstream_timeout"),
}


def _answer_problems(answer: Any, documented: float) -> list[str]:
    """A job's ``expires_at`` is ``created_at`` plus the ``documented`` retention (7 days), to
    the second: both are whole seconds, each rounded down."""
    if not isinstance(answer, dict):
        return []
    created, expires = answer.get("created_at"), answer.get("expires_at")
    if not (isinstance(created, int) and isinstance(expires, int)):
        return []  # absent or mistyped: the schema says so
    if abs(expires - created - documented) > 1:
        return [f"expires_at {expires} is created_at {created} + {expires - created} s; "
                f"expected + {documented:g} s (the documented retention)"]
    return []


class TheRouter:
    """The TheRouter dialect."""

    name: ClassVar[str] = "therouter"
    title: ClassVar[str] = "TheRouter"
    models: ClassVar[tuple[str, ...]] = (MODEL,)
    path_prefixes: ClassVar[tuple[str, ...]] = ("/v1/images/", "/v1/jobs")
    route_not_found_schema: ClassVar[str] = "therouter/route-not-found"
    async_hint: ClassVar[str] = "submit with ?async=true"
    error_schema: ClassVar[str] = "therouter/error"
    routes: ClassVar[tuple[Route, ...]] = (
        Route(Operation.SUBMIT, "POST", "/v1/images/generations", "Submit a text-to-image job",
              "therouter/submit-request",
              {202: (_JOB, "job accepted (async=true)"),
               200: ("therouter/sync-response", "sync mode: the finished images"),
               **error_responses(_ERROR, 400, 404, 409, 413, 415)},
              _ASYNC_QUERY),
        Route(Operation.STATUS, "GET", "/v1/jobs/{job_id}", "Poll a job", None,
              {200: (_JOB, "the job in its current state"), **error_responses(_ERROR, 404)},
              path_params=_JOB_ID),
        Route(Operation.CONTENT, "GET", "/v1/jobs/{job_id}/content",
              "Download the image (302 to a pre-signed URL)", None,
              {302: (None, "redirect to the image"),
               **error_responses(_ERROR, 400, 404, 409, 410)},
              {"index": ({"type": "integer", "minimum": 0}, "which image when n > 1")},
              path_params=_JOB_ID),
        Route(Operation.CANCEL, "POST", "/v1/jobs/{job_id}/cancel",
              "Cancel a queued job (path assumed)", None,
              {200: (_JOB, "the cancelled job"), **error_responses(_ERROR, 404, 409)},
              path_params=_JOB_ID),
        Route(Operation.CANCEL, "DELETE", "/v1/jobs/{job_id}",
              "Cancel a queued job (alternative path, assumed)", None,
              {200: (_JOB, "the cancelled job"), **error_responses(_ERROR, 404, 409)},
              path_params=_JOB_ID),
    )

    Options: ClassVar[type[TheRouterOptions]] = TheRouterOptions
    errors: ClassVar[Mapping[str, Any]] = _ERRORS
    client: ClassVar[ClientFacts] = ClientFacts(
        model=MODEL,
        submit=Endpoint("POST", "/v1/images/generations", {"async": "true"}),
        status=Endpoint("GET", "/v1/jobs/{id}"),
        cancel=Endpoint("POST", "/v1/jobs/{id}/cancel"),
        result=None,
        body=lambda prompt: {"model": MODEL, "prompt": prompt},
        prompt_field=("prompt",),
        id_field=("id",),
        status_field=("status",),
        phases={word: phase for phase, word in _STATUS.items()},
        image_urls=lambda answer: list(answer["unsigned_urls"]),
        cancelled=lambda answer: answer.get("status") == "cancelled",
        url_fields={"polling_url": ("/v1/jobs/{id}", False)},
        unknown_id="img_" + "0" * 26,
        request_schema="therouter/submit-request",
        fixed_fields={"model": MODEL},
        real_base_url="https://api.therouter.ai",
        key_env="THE_ROUTER_API_KEY",
        price_per_image=0.048,
        price_source="TheRouter's pricing table (the model page's prose says $0.04)",
        cancel_only_queued=False,  # cancel_running may widen it
        answer_problems=_answer_problems,
    )

    def __init__(self, options: TheRouterOptions | None = None) -> None:
        self.config = options or TheRouterOptions()

    @property
    def retention(self) -> float:
        return self.config.retention

    @property
    def cancellable(self) -> Collection[Phase]:
        if self.config.cancel_running:
            return (Phase.QUEUED, Phase.RUNNING)
        return (Phase.QUEUED,)

    def new_id(self, rng: random.Random, tag: bytes) -> str:
        return "img_" + base32.encode(new_id(rng, tag=tag))  # a ULID's 26 characters

    def parse_id(self, job_id: str) -> bytes:
        if not _ID.match(job_id):
            raise MalformedId(f"{job_id[:80]!r} is not a job id (expected img_ + 26 letters "
                              "or digits)")
        if not job_id[4:].isupper() and not job_id[4:].isdigit():
            return b""  # ids are case-sensitive: not as issued, so not one wanmock issued
        try:
            return base32.decode(job_id[4:])
        except ValueError:
            return b""  # well formed for the provider, but not one wanmock can have issued

    def polling_url(self, base: str, job_id: str) -> str:
        return f"{base}/v1/jobs/{job_id}"

    def parse_submit(self, submitted: SubmitInput) -> JobRequest:
        body = submitted.body
        if isinstance(body, dict):
            body = dict(body)
            if not self.config.reject_unknown_fields:
                allowed = {"model", "prompt", "n", "size", "seed"}
                body = {k: v for k, v in body.items() if k in allowed}
            size = body.get("size")
            if self.config.size_syntax is SizeSyntax.X_OR_STAR and isinstance(size, str):
                body["size"] = size.replace("*", "x")
        error = schema_violations("therouter/submit-request", body)
        if error:
            raise error
        if body["model"] not in self.models:
            raise UnknownModel(body["model"], self.models)
        width, height = (int(side) for side in body.get("size", "1024x1024").split("x"))
        return JobRequest(
            model=MODEL,  # the canonical string, shared by every job
            prompt=body["prompt"],
            width=width,
            height=height,
            n=int(body.get("n", 1)),
            seed=int(body["seed"]) if "seed" in body else None,
            params=compact_json(body),
        )

    def sync_deadline(self, submitted: SubmitInput) -> float | None:
        flag = submitted.query.get("async", "false")
        if flag not in ("true", "false"):
            raise InvalidRequest([Violation(
                "async", "enum", f"query parameter async must be true or false; got {flag!r}"
            )])
        return None if flag == "true" else self.config.sync_deadline

    def render_submit(self, view: JobView, links: Links) -> Reply:
        return Reply(202, self._job(view, links), schema=_JOB)

    def render_sync(self, view: JobView, links: Links) -> Reply:
        if view.phase is Phase.SUCCEEDED:
            body = {"created": int(view.record.created_at),
                    "data": [{"url": url} for url in links.images(view)]}
            return Reply(200, body, schema="therouter/sync-response")
        failure = view.record.failure
        if view.phase is Phase.FAILED and failure is not None:
            kind, code = _FAILURES[failure.kind]
            status = 400 if failure.kind is FailureKind.MODERATION else 502
            return _error(status, f"{failure.message} (job {view.id})", kind, code)
        return _error(409, f"job {view.id} ended {_STATUS[view.phase]}",
                      "invalid_request_error", f"job_{_STATUS[view.phase]}")

    def render_status(self, view: JobView, links: Links) -> Reply:
        return Reply(200, self._job(view, links), schema=_JOB)

    render_result = render_status

    def render_cancel(self, result: CancelResult, links: Links) -> Reply:
        view = result.view
        if not result.cancelled_now and view.phase is not Phase.CANCELLED:
            allowed = [_STATUS[p] for p in self.cancellable]
            return self.render_error(NotCancellable(view.id, _STATUS[view.phase], allowed))
        return Reply(200, self._job(view, links), schema=_JOB)

    def render_content(self, view: JobView, links: Links, query: Mapping[str, str]) -> Reply:
        if view.phase is Phase.EXPIRED:
            return _error(410, f"job {view.id} has expired; its artifacts were deleted",
                          "invalid_request_error", "job_expired")
        if view.phase is not Phase.SUCCEEDED:
            return self.render_error(NotReady(view.id, _STATUS[view.phase],
                                              "; poll GET /v1/jobs/{id} until succeeded",
                                              final=view.phase.terminal))
        urls = links.images(view)
        raw = query.get("index", "0")
        if not (raw.isascii() and raw.isdigit() and len(raw) < 4) or int(raw) >= len(urls):
            return _error(400, f"index must be an integer from 0 to {len(urls) - 1}; got "
                               f"{raw[:20]!r}",
                          "invalid_request_error", "invalid_request", "index")
        return Reply(302, None, {"location": urls[int(raw)]})

    def render_error(self, error: ApiError) -> Reply:
        status, kind, code = _ERRORS[error.kind]
        param = None
        message = error.message
        if isinstance(error, InvalidRequest):
            param = error.field
        elif isinstance(error, UnknownModel):
            param = "model"
        elif isinstance(error, JobNotFound) or error.kind in ("job_forbidden", "malformed_id"):
            message = "Job not found" + (f": {message}" if error.kind != "job_forbidden" else "")
            if isinstance(error, JobNotFound) and error.reason == "other-run":
                code = "job_not_found_after_restart"
        if isinstance(error, InjectedFault):
            status = error.status
            kind, code = ("server_error", "upstream_error") if status >= 500 else (kind, code)
        if error.kind == "route_not_found":
            body = {"message": message, "error": "Not Found", "statusCode": 404}
            return Reply(404, body, schema="therouter/route-not-found")
        reply = _error(status, message, kind, code, param)
        return Reply(reply.status, reply.body, error_headers(error), reply.schema)

    def _job(self, view: JobView, links: Links) -> dict[str, Any]:
        record = view.record
        body: dict[str, Any] = {
            "id": record.id,
            "object": "image_job",
            "status": _STATUS[view.phase],
            "model": record.request.model,
            "created_at": int(record.created_at),
            "polling_url": self.polling_url(links.base, record.id),
            "expires_at": int(record.expires_at),
        }
        if view.phase is Phase.SUCCEEDED:
            urls = links.images(view)
            body["unsigned_urls"] = urls
            body["result"] = {"data": [{"url": url} for url in urls]}
        elif view.phase is Phase.FAILED and record.failure is not None:
            kind, code = _FAILURES[record.failure.kind]
            body["error"] = {"message": record.failure.message, "type": kind, "code": code}
        return body


def _error(status: int, message: str, kind: str, code: str, param: str | None = None) -> Reply:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if param is not None:
        error["param"] = param
    return Reply(status, {"error": error}, schema=_ERROR)
