"""RunComfy Model API (model-api.runcomfy.net): queue-style requests with status/result/cancel URLs.

Documented: submit ``POST /v1/models/{model_id}``; ``GET /v1/requests/{id}/status`` and
``/result``; ``POST /v1/requests/{id}/cancel`` → 202 with ``outcome``. The input schema is the
seed's. Where the docs disagree (submit 200 vs 202, /result before completion, the auth error,
``failed`` on /status, ``output.image`` vs ``images``)
:class:`~wanmock.server.config.RunComfyConfig` selects; defaults are the documented variants.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from wanmock import schemas

from ..config import DAY
from ..engine import CancelResult
from ..errors import (
    ApiError,
    ConfigError,
    InjectedFault,
    InvalidRequest,
    JobNotFound,
    MalformedId,
    NotReady,
    UnknownModel,
)
from ..ids import UUID_PATTERN, new_uuid, uuid_bytes
from ..lifecycle import JobRequest, JobView
from ..vocab import Phase
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
    iso8601,
    schema_violations,
    times_out_of_order,
)

__all__ = ["AuthErrorStyle", "FailedStatusWord", "NotReadyStyle", "OutputField", "RunComfy",
           "RunComfyOptions"]


class NotReadyStyle(enum.StrEnum):
    """What RunComfy's ``/result`` answers before completion."""

    STATE = "state"  #: 200 with the current status (documented)
    ERROR_400005 = "error-400005"  #: HTTP 400 ``error_code 400005`` (RunComfy's own test mock)


class FailedStatusWord(enum.StrEnum):
    """What RunComfy's ``/status`` says for a failed job."""

    FAILED = "failed"  #: RunComfy's mock, CLI and MCP client all treat "failed" as terminal
    COMPLETED = "completed"  #: only the documented words; ``/result`` then says "failed"


class AuthErrorStyle(enum.StrEnum):
    """How RunComfy answers a bad key."""

    #: Serverless doc's 401001 Unauthorized at HTTP 401; RunComfy's CLI treats 401/403 as auth.
    CODE_401001 = "401001"
    #: Model API doc's code 400004 UserAccountError, at HTTP 400 (the status is only inferred
    #: from the code's prefix).
    CODE_400004 = "400004"


class OutputField(enum.StrEnum):
    """Where RunComfy puts the image URL in ``output``."""

    IMAGE = "image"  #: ``output.image`` (documented generic result example)
    IMAGES = "images"  #: ``output.images`` (RunComfy's own mock)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunComfyOptions:
    """``[runcomfy]``: choices where RunComfy's docs are silent or disagree (README,
    "Assumptions")."""

    #: Result retention: undocumented. INFERRED from the upstream (DashScope) task validity.
    retention: float = DAY
    submit_status: int = 200
    result_before_done: NotReadyStyle = NotReadyStyle.STATE
    failed_status_word: FailedStatusWord = FailedStatusWord.FAILED
    auth_error: AuthErrorStyle = AuthErrorStyle.CODE_401001
    output_field: OutputField = OutputField.IMAGE
    #: Reject body fields that the input schema does not define.
    reject_unknown_fields: bool = True

    def __post_init__(self) -> None:
        if self.submit_status not in (200, 202):
            raise ConfigError(
                f"runcomfy.submit_status must be 200 (docs) or 202 (RunComfy's mock), "
                f"got {self.submit_status}"
            )

MODEL = "wan-ai/wan-2-2/flash/text-to-image"
INPUT_SCHEMA = "runcomfy/submit-request"
_ID = UUID_PATTERN
_ASPECT = re.compile(r"^(\d+):(\d+) ")
_STATUS = {
    Phase.QUEUED: "in_queue",
    Phase.RUNNING: "in_progress",
    Phase.SUCCEEDED: "completed",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "cancelled",
}
_RESULT = {**_STATUS, Phase.SUCCEEDED: "succeeded"}
_ERROR = "runcomfy/error"
#: Errors of the endpoints addressed by request_id: malformed id, another key's, unknown.
_BY_ID = (400, 403, 404)
_REQUEST_ID = {"job_id": {"type": "string", "format": "uuid", "pattern": _ID.pattern}}
#: A UUID's version 4 and RFC 4122 variant bits.

#: Domain error kind -> (HTTP status, error_code, name). Codes from the Model API docs [S-RC3]
#: and the Serverless docs [S-RC5]; the rest follow their rule "first three digits = HTTP status".
_ERRORS: dict[str, tuple[int, int, str]] = {
    "auth": (401, 401001, "Unauthorized"),
    "malformed_body": (422, 422001, "Validation Error"),
    "unsupported_media_type": (422, 422001, "Validation Error"),
    "invalid_request": (422, 422001, "Validation Error"),
    "body_too_large": (413, 413001, "Request Entity Too Large"),
    "unknown_model": (400, 400001, "InvalidResourceIdentifier"),
    "malformed_id": (400, 400001, "InvalidResourceIdentifier"),
    "job_not_found": (404, 404001, "ResourceNotFound"),
    "job_forbidden": (403, 403001, "PermissionDeniedError"),
    "not_ready": (400, 400005, "NotReady"),
    "route_not_found": (404, 404001, "ResourceNotFound"),
    "method_not_allowed": (405, 405001, "MethodNotAllowed"),
    "rate_limited": (429, 429001, "TooManyRequests"),
    "budget_exceeded": (429, 429001, "TooManyRequests"),
    "sync_timeout": (504, 504001, "Gateway Timeout"),
    "not_cancellable": (400, 400001, "BadRequest"),
    "injected_fault": (500, 500001, "Internal Error"),
    "state_unavailable": (503, 503001, "Service Unavailable"),
}


class RunComfy:
    """The RunComfy Model API dialect."""

    name: ClassVar[str] = "runcomfy"
    title: ClassVar[str] = "RunComfy Model API"
    models: ClassVar[tuple[str, ...]] = (MODEL,)
    path_prefixes: ClassVar[tuple[str, ...]] = ("/v1/models", "/v1/requests")
    route_not_found_schema: ClassVar[str] = "runcomfy/error"
    error_schema: ClassVar[str] = "runcomfy/error"
    routes: ClassVar[tuple[Route, ...]] = (
        Route(Operation.SUBMIT, "POST", "/v1/models/{model_id:path}", "Submit a request",
              INPUT_SCHEMA,
              {200: ("runcomfy/submit-response", "queued (docs: 200)"),
               202: ("runcomfy/submit-response", "queued (RunComfy's own mock: 202)"),
               **error_responses(_ERROR, 400, 413, 422)},
              path_params={"model_id": {"enum": [MODEL]}}),
        Route(Operation.STATUS, "GET", "/v1/requests/{job_id}/status", "Poll a request", None,
              {200: ("runcomfy/status", "current status"), **error_responses(_ERROR, *_BY_ID)},
              path_params=_REQUEST_ID),
        Route(Operation.RESULT, "GET", "/v1/requests/{job_id}/result",
              "Fetch the result (or the current state)", None,
              {200: ("runcomfy/result", "outputs, or the current state"),
               **error_responses(_ERROR, *_BY_ID)},
              path_params=_REQUEST_ID),
        Route(Operation.CANCEL, "POST", "/v1/requests/{job_id}/cancel",
              "Cancel a queued request", None,
              {202: ("runcomfy/cancel-response", "outcome cancelled or not_cancellable"),
               **error_responses(_ERROR, *_BY_ID)},
              path_params=_REQUEST_ID),
    )

    Options: ClassVar[type[RunComfyOptions]] = RunComfyOptions
    errors: ClassVar[Mapping[str, Any]] = _ERRORS
    client: ClassVar[ClientFacts] = ClientFacts(
        model=MODEL,
        submit=Endpoint("POST", f"/v1/models/{MODEL}"),
        status=Endpoint("GET", "/v1/requests/{id}/status"),
        cancel=Endpoint("POST", "/v1/requests/{id}/cancel"),
        result=Endpoint("GET", "/v1/requests/{id}/result"),
        body=lambda prompt: {"prompt": prompt},
        prompt_field=("prompt",),
        id_field=("request_id",),
        status_field=("status",),
        phases={word: phase for phase, word in _STATUS.items()},
        image_urls=lambda answer: ([answer["output"]["image"]] if "image" in answer["output"]
                                   else list(answer["output"]["images"])),
        cancelled=lambda answer: answer.get("outcome") == "cancelled",
        url_fields={f"{name}_url": (f"/v1/requests/{{id}}/{name}", True)
                    for name in ("status", "result", "cancel")},
        unknown_id="00000000-0000-4000-8000-000000000000",
        request_schema=INPUT_SCHEMA,
        real_base_url="https://model-api.runcomfy.net",
        key_env="RUNCOMFY_API_TOKEN",
        price_per_image=0.048,
        price_source="RunComfy bills per request; TheRouter's $0.048 per image as a bound",
        answer_problems=lambda answer, retention: times_out_of_order(
            answer, ("created_at", "finished_at")),  # retention undocumented: not judged
    )

    def __init__(self, options: RunComfyOptions | None = None) -> None:
        self.config = options or RunComfyOptions()
        properties = schemas.load(INPUT_SCHEMA)["properties"]
        self._fields = frozenset(properties)
        self._defaults = {k: v["default"] for k, v in properties.items() if "default" in v}

    @property
    def retention(self) -> float:
        return self.config.retention

    @property
    def cancellable(self) -> Collection[Phase]:
        return (Phase.QUEUED,)

    def new_id(self, rng: random.Random, tag: bytes) -> str:
        return new_uuid(rng, tag=tag)

    def parse_id(self, job_id: str) -> bytes:
        raw = uuid_bytes(job_id)
        if raw is None:
            raise MalformedId(f"{job_id[:80]!r} is not a request_id (expected a lower-case UUID)")
        return raw

    def polling_url(self, base: str, job_id: str) -> str:
        return f"{base}/v1/requests/{job_id}/status"

    def parse_submit(self, submitted: SubmitInput) -> JobRequest:
        body = submitted.body
        model = submitted.path_params.get("model_id", "")
        if model not in self.models:
            raise UnknownModel(model, self.models)
        if isinstance(body, dict) and not self.config.reject_unknown_fields:
            body = {k: v for k, v in body.items() if k in self._fields}
        error = schema_violations(INPUT_SCHEMA, body)
        if error:
            raise error
        values = {**self._defaults, **body}
        match = _ASPECT.match(values["aspect_ratio"])
        assert match is not None  # guaranteed by the schema's enum
        return JobRequest(
            model=MODEL,  # the canonical string, shared by every job
            prompt=values["prompt"],
            negative_prompt=values["negative_prompt"],
            width=int(match.group(1)),
            height=int(match.group(2)),
            seed=int(values["seed"]),
            prompt_extend=bool(values["prompt_extend"]),
            params=compact_json(values),
        )

    def sync_deadline(self, submitted: SubmitInput) -> float | None:
        return None

    def render_submit(self, view: JobView, links: Links) -> Reply:
        base = f"{links.base}/v1/requests/{view.id}"
        body = {
            "request_id": view.id,
            "status": _STATUS.get(view.phase, "in_queue"),
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
            "cancel_url": f"{base}/cancel",
        }
        return Reply(self.config.submit_status, body, schema="runcomfy/submit-response")

    def render_status(self, view: JobView, links: Links) -> Reply:
        self._check_not_expired(view)
        base = f"{links.base}/v1/requests/{view.id}"
        status = _STATUS[view.phase]  # expired answered 404001 above
        if view.phase is Phase.FAILED:
            status = str(self.config.failed_status_word)
        body: dict[str, Any] = {"request_id": view.id, "status": status}
        if view.queue_position is not None:
            body["queue_position"] = view.queue_position
        body["status_url"] = f"{base}/status"
        body["result_url"] = f"{base}/result"
        if view.phase is Phase.FAILED and view.record.failure is not None:
            body["error"] = view.record.failure.message
        return Reply(200, body, schema="runcomfy/status")

    def render_result(self, view: JobView, links: Links) -> Reply:
        self._check_not_expired(view)
        if not view.phase.terminal and self.config.result_before_done is NotReadyStyle.ERROR_400005:
            return self.render_error(
                NotReady(view.id, _STATUS[view.phase], "; poll status_url until completed")
            )
        record = view.record
        body: dict[str, Any] = {"request_id": view.id, "status": _RESULT[view.phase]}
        if view.phase is Phase.SUCCEEDED:
            urls = links.images(view)
            if self.config.output_field is OutputField.IMAGES:
                body["output"] = {"images": urls}
            else:
                body["output"] = {"image": urls[0]} if len(urls) == 1 else {"images": urls}
        if view.queue_position is not None:
            body["queue_position"] = view.queue_position
        body["created_at"] = iso8601(record.created_at)
        finished = view.finished_at
        body["finished_at"] = iso8601(finished) if finished is not None else None
        if view.phase is Phase.FAILED and record.failure is not None:
            body["error"] = record.failure.message
        return Reply(200, body, schema="runcomfy/result")

    def render_cancel(self, result: CancelResult, links: Links) -> Reply:
        view = result.view
        self._check_not_expired(view)
        outcome = "cancelled" if view.phase is Phase.CANCELLED else "not_cancellable"
        body = {"request_id": view.id, "status": _STATUS[view.phase], "outcome": outcome}
        return Reply(202, body, schema="runcomfy/cancel-response")

    def render_error(self, error: ApiError) -> Reply:
        status, code, name = _ERRORS[error.kind]
        if error.kind == "auth" and self.config.auth_error is AuthErrorStyle.CODE_400004:
            status, code, name = 400, 400004, "UserAccountError"
        detail: Any = None
        if isinstance(error, InvalidRequest):
            detail = [{"loc": _loc(v.field), "msg": v.message, "type": v.rule}
                      for v in error.violations]
        elif error.kind in ("malformed_body", "unsupported_media_type"):
            detail = [{"loc": ["body"], "msg": error.message, "type": error.kind}]
        if isinstance(error, InjectedFault):
            status, code = error.status, error.status * 1000 + 1
        body = {"error_code": code, "error_message": f"{name}: {error.message}", "detail": detail}
        return Reply(status, body, error_headers(error), schema=_ERROR)

    def _check_not_expired(self, view: JobView) -> None:
        if view.phase is Phase.EXPIRED:  # "nonexistent, deleted or expired request_id" [S-RC3]
            raise JobNotFound(view.id, reason="expired")


def _loc(field: str) -> list[str]:
    """FastAPI-style location: request headers are named as such, the rest is the body."""
    return ["header", field] if field.startswith("X-") else ["body", *field.split(".")]
