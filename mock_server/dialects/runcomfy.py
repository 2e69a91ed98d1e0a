"""RunComfy Model API (model-api.runcomfy.net): queue-style requests with status/result/cancel URLs.

Documented: submit ``POST /v1/models/{model_id}``; ``GET /v1/requests/{id}/status`` and
``/result``; ``POST /v1/requests/{id}/cancel`` → 202 with ``outcome``. The input schema is the
seed's. Where the docs disagree (submit 200 vs 202, /result before completion, the auth error,
``failed`` on /status, ``output.image`` vs ``images``)
:class:`~wanmock.server.config.RunComfyConfig` selects; defaults are the documented variants.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from wanmock import schemas

from ..config import AuthErrorStyle, Config, NotReadyStyle, OutputField
from ..engine import CancelResult
from ..errors import (
    ApiError,
    InjectedFault,
    InvalidRequest,
    JobNotFound,
    MalformedId,
    NotReady,
    UnknownModel,
)
from ..lifecycle import JobRequest, JobView
from ..vocab import Phase
from .base import (
    Links,
    Operation,
    Reply,
    Route,
    compact_json,
    error_headers,
    error_responses,
    iso8601,
    schema_violations,
)

__all__ = ["RunComfy"]

MODEL = "wan-ai/wan-2-2/flash/text-to-image"
INPUT_SCHEMA = "runcomfy/submit-request"
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
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
    "injected_fault": (500, 500001, "Internal Error"),
}


class RunComfy:
    """The RunComfy Model API dialect."""

    name: ClassVar[str] = "runcomfy"
    title: ClassVar[str] = "RunComfy Model API"
    models: ClassVar[tuple[str, ...]] = (MODEL,)
    path_prefixes: ClassVar[tuple[str, ...]] = ("/v1/models", "/v1/requests")
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

    def __init__(self, config: Config) -> None:
        self.config = config.runcomfy
        properties = schemas.load(INPUT_SCHEMA)["properties"]
        self._fields = frozenset(properties)
        self._defaults = {k: v["default"] for k, v in properties.items() if "default" in v}

    @property
    def retention(self) -> float:
        return self.config.retention

    @property
    def cancellable(self) -> Collection[Phase]:
        return (Phase.QUEUED,)

    def new_id(self, rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def check_id(self, job_id: str) -> None:
        if not _ID.match(job_id):
            raise MalformedId(f"{job_id[:80]!r} is not a request_id (expected a UUID)")

    def parse_submit(
        self, body: Any, *, path_params: Mapping[str, str], query: Mapping[str, str]
    ) -> JobRequest:
        model = path_params.get("model_id", "")
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

    def sync_deadline(self, query: Mapping[str, str]) -> float | None:
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

    def render_sync(self, view: JobView, links: Links) -> Reply:  # pragma: no cover - never sync
        return self.render_result(view, links)

    def render_status(self, view: JobView, links: Links) -> Reply:
        self._check_not_expired(view)
        base = f"{links.base}/v1/requests/{view.id}"
        status = _STATUS[view.phase]
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

    def render_content(self, view: JobView, links: Links, query: Mapping[str, str]) -> Reply:
        raise NotImplementedError("RunComfy has no content endpoint")  # no route maps here

    def render_error(self, error: ApiError) -> Reply:
        status, code, name = _ERRORS.get(error.kind, (400, 400000, "BadRequest"))
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
            raise JobNotFound(view.id, expired=True)


def _loc(field: str) -> list[str]:
    """FastAPI-style location: request headers are named as such, the rest is the body."""
    return ["header", field] if field.startswith("X-") else ["body", *field.split(".")]
