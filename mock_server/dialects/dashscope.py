"""Alibaba DashScope (Model Studio): the upstream of both resellers, as its official SDK calls it.

Documented (provider-contracts §3, §3.8): create a task with ``POST /api/v1/services/aigc/
text2image/image-synthesis`` and ``X-DashScope-Async: enable`` → ``{output: {task_id,
task_status: PENDING}, request_id}``; poll ``GET /api/v1/tasks/{task_id}``; cancel a PENDING task
with ``POST /api/v1/tasks/{task_id}/cancel``. Without the async header wan2.2-t2i-flash answers
synchronously (the SDK's ``sync_call``) and async-only models refuse. Prompts over 800 characters
and negative prompts over 500 are truncated, not rejected; ``n`` defaults to 4 and image *i*
uses ``seed + i``. Every choice the docs leave open is a field of :class:`DashScopeOptions`
(``[dashscope]``; README, "Assumptions").
"""

from __future__ import annotations

import enum
import random
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from wanmock import schemas

from ..config import DAY
from ..engine import CancelResult
from ..errors import (
    ApiError,
    ConfigError,
    InjectedFault,
    InvalidRequest,
    MalformedId,
    NotCancellable,
    UnknownModel,
    Violation,
)
from ..ids import UUID_PATTERN, new_uuid, uuid_bytes
from ..lifecycle import JobRequest, JobView
from ..vocab import FailureKind, Phase
from .base import (
    ClientFacts,
    Endpoint,
    Links,
    ListQuery,
    Operation,
    Reply,
    Route,
    SubmitInput,
    compact_json,
    error_headers,
    error_responses,
    schema_violations,
    times_out_of_order,
)

__all__ = ["DashScope", "DashScopeOptions", "LongPrompt", "SyncRefusal", "UnknownTask"]


def _answer_problems(answer: Any, retention: float) -> list[str]:
    """A task's times come in order, and ``usage.image_count`` (what is billed) is the number
    of results with an image: a failed image of a partial failure is listed but not billed."""
    if not isinstance(answer, dict) or not isinstance(answer.get("output"), dict):
        return []
    output = answer["output"]
    problems = times_out_of_order(output, ("submit_time", "scheduled_time", "end_time"),
                                  "output.")
    usage, results = answer.get("usage"), output.get("results")
    if isinstance(usage, dict) and isinstance(results, list):
        count = usage.get("image_count")
        images = sum(isinstance(r, dict) and "url" in r for r in results)
        if isinstance(count, int) and count != images:
            problems.append(f"usage.image_count is {count}, but output.results holds {images} "
                            f"image{'s' if images != 1 else ''}; expected {images}")
    return problems


class LongPrompt(enum.StrEnum):
    """What DashScope does with a prompt over its limit."""

    TRUNCATE = "truncate"  #: cut to the limit (the newer Chinese doc, §3.8: 800 / 500)
    REJECT = "reject"  #: 400 InvalidParameter (set prompt_chars = 500 for the older page, §3.1)


class SyncRefusal(enum.StrEnum):
    """How an async-only model answers a call without ``X-DashScope-Async: enable``."""

    #: 403 AccessDenied "current user api does not support synchronous calls" (the shape probed
    #: live for the reverse case, §3.8)
    ACCESS_DENIED = "access-denied"
    #: 400 InvalidParameter with the same message (a third-party mock, §3.8)
    INVALID_PARAMETER = "invalid-parameter"


class UnknownTask(enum.StrEnum):
    """What ``GET /api/v1/tasks/{id}`` answers for an id that names no task of the key."""

    #: 404 with DashScope's error body (what ``wanmock verify`` expects of every provider)
    NOT_FOUND = "not-found"
    #: 200 with ``task_status: UNKNOWN`` (the SDK's own comment on expired or unknown ids)
    UNKNOWN_STATUS = "unknown-status"


@dataclass(frozen=True, slots=True, kw_only=True)
class DashScopeOptions:
    """``[dashscope]``: choices where DashScope's docs are silent or disagree (README,
    "Assumptions")."""

    #: task_id validity: 24 h, then ``UNKNOWN`` [S-DS3, S-DS5].
    retention: float = DAY
    #: The longest a synchronous (no async header) call waits before answering RequestTimeOut.
    sync_deadline: float = 300.0
    #: Models that accept the synchronous call (the SDK's ``sync_call`` docstring).
    sync_models: tuple[str, ...] = ("wan2.2-t2i-flash", "wan2.2-t2i-plus")
    sync_refusal: SyncRefusal = SyncRefusal.ACCESS_DENIED
    prompt_chars: int = 800
    negative_prompt_chars: int = 500
    long_prompt: LongPrompt = LongPrompt.TRUNCATE
    #: Refuse a body without ``parameters`` with 400 BadRequest.EmptyParameters [S-DS8]
    #: (default: every parameter has a documented default, and the SDK always sends one).
    require_parameters: bool = False
    #: Refuse body fields the docs do not list (InvalidParameter); off: ignore them.
    reject_unknown_fields: bool = True
    #: Hours east of UTC of the zone-less timestamps (the Beijing region's +8, assumed).
    utc_offset_hours: float = 8.0
    #: Whether a successful cancel carries ``output`` (task_id, CANCELED) beside request_id.
    cancel_output: bool = False
    unknown_task: UnknownTask = UnknownTask.NOT_FOUND

    def __post_init__(self) -> None:
        for name in ("prompt_chars", "negative_prompt_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"dashscope.{name} must be at least 1, got "
                                  f"{getattr(self, name)}")
        if not -14 <= self.utc_offset_hours <= 14:
            raise ConfigError(f"dashscope.utc_offset_hours must be within -14..14, got "
                              f"{self.utc_offset_hours}")


MODEL = "wan2.2-t2i-flash"
#: Served models: the flash model, its synchronous sibling, and an async-only older model.
MODELS = (MODEL, "wan2.2-t2i-plus", "wanx2.1-t2i-turbo")
SUBMIT_PATH = "/api/v1/services/aigc/text2image/image-synthesis"
_REQUEST = "dashscope/submit-request"
_TASK = "dashscope/task"
_ERROR = "dashscope/error"
_ID = UUID_PATTERN
_TASK_ID = {"job_id": {"type": "string", "pattern": _ID.pattern}}
_MAX_PIXELS = 2_000_000
#: Every answer begins with its request_id, rendered as this placeholder (a valid UUID4) and
#: stamped with a fresh uuid4 as each answer is sent (:meth:`DashScope.stamp`).
_STAMP = "00000000-0000-4000-8000-0000deadbeef"
_STAMP_PREFIX = b'{"request_id":"'
_STAMP_END = len(_STAMP_PREFIX) + len(_STAMP)
_STATUS = {
    Phase.QUEUED: "PENDING",
    Phase.RUNNING: "RUNNING",
    Phase.SUCCEEDED: "SUCCEEDED",
    Phase.FAILED: "FAILED",
    Phase.CANCELLED: "CANCELED",
    Phase.EXPIRED: "UNKNOWN",
}
#: Phases a listed task may be in: the five words of the status filter (an expired task, past
#: its 24 h, is no longer listed).
_LISTED = {word: phase for phase, word in _STATUS.items() if phase is not Phase.EXPIRED}
_PAGE_SIZE = (1, 100)
_PAGE_NO_MAX = 999_999_999
_STAMP_RE = re.compile(r"^[1-9][0-9]{13}\Z")  # a year before 1000 is refused, as documented
#: What the route documents for a time (days 29-31 are accepted too, where the month has them).
_TIME_PATTERN = (r"^[1-9][0-9]{3}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])([01][0-9]|2[0-3])"
                 r"[0-5][0-9][0-5][0-9]$")
_LIST_QUERY: dict[str, tuple[Mapping[str, Any], str]] = {
    "page_no": ({"type": "integer", "minimum": 1, "maximum": _PAGE_NO_MAX, "default": 1},
                "page number, from 1"),
    "page_size": ({"type": "integer", "minimum": _PAGE_SIZE[0], "maximum": _PAGE_SIZE[1],
                   "default": 10}, "tasks per page"),
    "start_time": ({"type": "string", "pattern": _TIME_PATTERN},
                   "earliest submit time, YYYYMMDDhhmmss (the zone of dashscope.utc_offset_hours)"),
    "end_time": ({"type": "string", "pattern": _TIME_PATTERN},
                 "latest submit time, YYYYMMDDhhmmss, inclusive (before start_time: no task)"),
    "model_name": ({"type": "string"}, "only tasks of this model"),
    "status": ({"type": "string", "enum": list(_LISTED)}, "only tasks in this status"),
    "api_key_id": ({"type": "string"}, "accepted and ignored (the caller's key decides)"),
    "region": ({"type": "string"}, "accepted and ignored"),
}
_ASYNC_HEADER = {"X-DashScope-Async": (
    {"type": "string", "enum": ["enable"]},
    "enable: create a task and answer at once; absent: a synchronous call (sync models only)")}

#: Domain error kind -> (HTTP status, DashScope code) [S-DS8, §3.6].
_ERRORS: dict[str, tuple[int, str]] = {
    "auth": (401, "InvalidApiKey"),
    "malformed_body": (400, "InvalidParameter"),
    "unsupported_media_type": (400, "InvalidParameter"),
    "body_too_large": (413, "BadRequest.TooLarge"),
    "invalid_request": (400, "InvalidParameter"),
    "unknown_model": (404, "ModelNotFound"),
    "malformed_id": (404, "NotFound"),
    "job_not_found": (404, "NotFound"),
    "job_forbidden": (404, "NotFound"),
    "not_ready": (400, "UnsupportedOperation"),
    "not_cancellable": (400, "UnsupportedOperation"),
    "sync_timeout": (408, "RequestTimeOut"),
    "method_not_allowed": (405, "UnsupportedOperation"),
    "rate_limited": (429, "Throttling.RateQuota"),
    "budget_exceeded": (429, "Throttling.AllocationQuota"),
    "injected_fault": (500, "InternalError"),
    "route_not_found": (404, "NotFound"),
    # a shared state that cannot be reached (the Redis backend's StateUnavailable, when merged)
    "state_unavailable": (503, "ServiceUnavailable"),
}
#: A missing top-level member has a code of its own [S-DS8].
_EMPTY = {"input": "BadRequest.EmptyInput", "parameters": "BadRequest.EmptyParameters",
          "model": "BadRequest.EmptyModel"}
#: How a failed task (or image) reads, by failure kind.
_FAILURES = {
    FailureKind.MODERATION: "DataInspectionFailed",
    FailureKind.INTERNAL: "InternalError",
    FailureKind.TIMEOUT: "InternalError.Timeout",
}
_FAULTS = {429: "Throttling", 500: "InternalError", 502: "InternalError",
           503: "ServiceUnavailable", 504: "RequestTimeOut"}


class SyncNotSupported(InvalidRequest):
    """A synchronous call (no ``X-DashScope-Async: enable``) to an async-only model (a kind of
    invalid request, so that no other provider has to map it)."""

    def __init__(self, message: str) -> None:
        super().__init__([Violation("X-DashScope-Async", "required", message)])


def _fields(schema: Mapping[str, Any], where: str) -> frozenset[str]:
    return frozenset(schema["properties"][where]["properties"])


class DashScope:
    """The DashScope dialect (the ``dashscope`` SDK's ``ImageSynthesis``)."""

    name: ClassVar[str] = "dashscope"
    title: ClassVar[str] = "Alibaba DashScope"
    models: ClassVar[tuple[str, ...]] = MODELS
    path_prefixes: ClassVar[tuple[str, ...]] = ("/api/v1/",)
    route_not_found_schema: ClassVar[str] = _ERROR
    async_hint: ClassVar[str] = "submit with the header X-DashScope-Async: enable"
    stamp_prefix: ClassVar[bytes] = _STAMP_PREFIX
    stamp_placeholder: ClassVar[bytes] = _STAMP.encode()
    error_schema: ClassVar[str] = _ERROR
    routes: ClassVar[tuple[Route, ...]] = (
        Route(Operation.SUBMIT, "POST", SUBMIT_PATH, "Create a text-to-image task", _REQUEST,
              # a created task (PENDING) is also a valid task body: one schema for both answers
              {200: (_TASK, "task created (PENDING); without the async header, the finished "
                            "task"),
               **error_responses(_ERROR, 400, 403, 404, 408, 413)},
              headers=_ASYNC_HEADER),
        Route(Operation.STATUS, "GET", "/api/v1/tasks/{job_id}", "Query a task", None,
              {200: (_TASK, "the task in its current state"), **error_responses(_ERROR, 404)},
              path_params=_TASK_ID),
        Route(Operation.LIST, "GET", "/api/v1/tasks", "List the key's tasks, newest first",
              None, {200: ("dashscope/task-list", "one page of the key's live tasks"),
                     **error_responses(_ERROR, 400)}, query=_LIST_QUERY),
        Route(Operation.CANCEL, "POST", "/api/v1/tasks/{job_id}/cancel",
              "Cancel a PENDING task", None,
              {200: ("dashscope/cancel-response", "cancelled"),
               **error_responses(_ERROR, 400, 404)},
              path_params=_TASK_ID),
    )

    Options: ClassVar[type[DashScopeOptions]] = DashScopeOptions
    errors: ClassVar[Mapping[str, Any]] = _ERRORS
    client: ClassVar[ClientFacts] = ClientFacts(
        model=MODEL,
        submit=Endpoint("POST", SUBMIT_PATH, headers={"X-DashScope-Async": "enable"}),
        status=Endpoint("GET", "/api/v1/tasks/{id}"),
        cancel=Endpoint("POST", "/api/v1/tasks/{id}/cancel"),
        result=None,
        # n = 1: the documented default is 4 images, each billed
        body=lambda prompt: {"model": MODEL, "input": {"prompt": prompt},
                             "parameters": {"n": 1}},
        prompt_field=("input", "prompt"),
        id_field=("output", "task_id"),
        status_field=("output", "task_status"),
        phases={word: phase for phase, word in _STATUS.items()},
        image_urls=lambda answer: [r["url"] for r in answer["output"]["results"] if "url" in r],
        cancelled=lambda answer: "code" not in answer,
        unknown_id="00000000-0000-4000-8000-000000000000",
        request_schema=_REQUEST,
        fixed_fields={"model": MODEL},
        accepts=lambda body: _pixels(body.get("parameters", {}).get("size", "1")) <= _MAX_PIXELS,
        seed_field=("parameters", "seed"),
        real_base_url="https://dashscope-intl.aliyuncs.com",
        base_path="/api/v1",
        key_env="DASHSCOPE_API_KEY",
        price_per_image=0.025,
        price_source="Model Studio international price list for wan2.2-t2i-flash (INFERRED: "
                     "not in the stored docs)",
        answer_problems=_answer_problems,
    )

    def __init__(self, options: DashScopeOptions | None = None) -> None:
        self.config = options or DashScopeOptions()
        schema = schemas.load(_REQUEST)
        self._defaults = {k: v["default"] for k, v in
                          schema["properties"]["parameters"]["properties"].items()
                          if "default" in v}
        self._known = {"": frozenset(schema["properties"]), "input": _fields(schema, "input"),
                       "parameters": _fields(schema, "parameters")}
        self._zone = timezone(timedelta(hours=self.config.utc_offset_hours))

    @property
    def retention(self) -> float:
        return self.config.retention

    @property
    def cancellable(self) -> Collection[Phase]:
        return (Phase.QUEUED,)  # "Only tasks whose status is PENDING can be canceled."

    def new_id(self, rng: random.Random, tag: bytes) -> str:
        return new_uuid(rng, tag=tag)

    def parse_id(self, job_id: str) -> bytes:
        raw = uuid_bytes(job_id)
        if raw is None:
            raise MalformedId(f"{job_id[:80]!r} is not a task_id (expected a lower-case UUID)")
        return raw

    def polling_url(self, base: str, job_id: str) -> str:
        return f"{base}/api/v1/tasks/{job_id}"

    def parse_submit(self, submitted: SubmitInput) -> JobRequest:
        body = submitted.body
        if isinstance(body, dict):
            body = self._truncated(self._known_only(body))
        error = schema_violations(_REQUEST, body)
        if error:
            raise error
        if self.config.require_parameters and "parameters" not in body:
            raise InvalidRequest([Violation("parameters", "required", "parameters is required")])
        if body["model"] not in self.models:
            raise UnknownModel(body["model"], self.models)
        parameters = {**self._defaults, **body.get("parameters", {})}
        width, height = (int(side) for side in parameters["size"].split("*"))
        if _pixels(parameters["size"]) > _MAX_PIXELS:
            raise InvalidRequest([Violation("parameters.size", "maximum", (
                f"parameters.size {width}*{height} is {width * height} pixels; at most "
                f"{_MAX_PIXELS} (2 megapixels, e.g. 1414*1414) are allowed"))])
        prompt = body["input"]["prompt"]
        kept = {**body, "parameters": parameters}
        return JobRequest(
            model=next(m for m in self.models if m == body["model"]),  # a shared string
            prompt=prompt,
            negative_prompt=body["input"].get("negative_prompt", ""),
            width=width,
            height=height,
            n=int(parameters["n"]),
            seed=int(parameters["seed"]) if "seed" in parameters else None,
            prompt_extend=bool(parameters["prompt_extend"]),
            params=compact_json(kept, ("input", "prompt")),
            prompt_path=("input", "prompt"),
        )

    def _known_only(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.config.reject_unknown_fields:
            return body
        kept = {k: v for k, v in body.items() if k in self._known[""]}
        for where in ("input", "parameters"):
            if isinstance(kept.get(where), dict):
                kept[where] = {k: v for k, v in kept[where].items() if k in self._known[where]}
        return kept

    def _truncated(self, body: dict[str, Any]) -> dict[str, Any]:
        """Over-long prompts cut to their limits (or refused, as configured)."""
        given = body.get("input")
        if not isinstance(given, dict):
            return body
        given = dict(given)
        for name, limit in (("prompt", self.config.prompt_chars),
                            ("negative_prompt", self.config.negative_prompt_chars)):
            text = given.get(name)
            if isinstance(text, str) and len(text) > limit:
                if self.config.long_prompt is LongPrompt.REJECT:
                    raise InvalidRequest([Violation(f"input.{name}", "maxLength", (
                        f"input.{name} is {len(text)} characters; at most {limit} are "
                        "allowed"))])
                given[name] = text[:limit]
        return {**body, "input": given}

    def sync_deadline(self, submitted: SubmitInput) -> float | None:
        flag = submitted.headers.get("x-dashscope-async")
        if flag == "enable":
            return None
        if flag is not None:
            raise InvalidRequest([Violation("X-DashScope-Async", "enum", (
                f"header X-DashScope-Async must be 'enable' (or absent for a synchronous "
                f"call); got {flag[:40]!r}"))])
        body = submitted.body
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.config.sync_models:
            raise SyncNotSupported(
                f"current user api does not support synchronous calls (model {model!r} is "
                "async only: send 'X-DashScope-Async: enable'; synchronous models: "
                f"{', '.join(self.config.sync_models)})")
        return self.config.sync_deadline

    def render_submit(self, view: JobView, links: Links) -> Reply:
        body = {"request_id": _STAMP, "output": {"task_status": "PENDING", "task_id": view.id}}
        return Reply(200, body, schema="dashscope/submit-response")  # the stricter schema

    def render_sync(self, view: JobView, links: Links) -> Reply:
        return self.render_status(view, links)

    def render_status(self, view: JobView, links: Links) -> Reply:
        record = view.record
        output: dict[str, Any] = {"task_id": view.id, "task_status": _STATUS[view.phase]}
        body: dict[str, Any] = {"request_id": _STAMP, "output": output}
        if view.phase is Phase.EXPIRED:
            return Reply(200, body, schema=_TASK)  # past its 24 h: nothing more is known
        output["submit_time"] = self._time(record.created_at)
        if view.started_at is not None:
            output["scheduled_time"] = self._time(view.started_at)
        if view.finished_at is not None:
            output["end_time"] = self._time(view.finished_at)
        n = record.request.n
        if view.phase is Phase.SUCCEEDED:
            output["results"] = self._results(view, links)
            ok = record.images
            output["task_metrics"] = {"TOTAL": n, "SUCCEEDED": ok, "FAILED": n - ok}
            body["usage"] = {"image_count": ok}  # only successful images are billed
        elif view.phase is Phase.FAILED and record.failure is not None:
            output["code"] = _FAILURES[record.failure.kind]
            output["message"] = record.failure.message
            output["task_metrics"] = {"TOTAL": n, "SUCCEEDED": 0, "FAILED": n}
        return Reply(200, body, schema=_TASK)

    def _results(self, view: JobView, links: Links) -> list[dict[str, Any]]:
        record = view.record
        prompt = record.request.prompt
        results: list[dict[str, Any]] = []
        for url in links.images(view):
            result = {"url": url, "orig_prompt": prompt}
            if record.request.prompt_extend:
                result["actual_prompt"] = _extended(prompt)
            results.append(result)
        for _ in range(record.failed_images):
            results.append({"code": "InternalError",
                            "message": "An internal error has occurred for this image, please "
                                       "try again later."})
        return results

    def parse_list(self, query: Mapping[str, str], now: float) -> ListQuery:
        if self.config.reject_unknown_fields:
            unknown = sorted(name for name in query if name not in _LIST_QUERY)
            if unknown:
                raise InvalidRequest([Violation(unknown[0][:40], "additionalProperties", (
                    f"unknown query parameter {unknown[0][:40]!r}; known: "
                    f"{', '.join(_LIST_QUERY)}"))])
        page_no = _whole(query, "page_no", 1, 1, _PAGE_NO_MAX)
        page_size = _whole(query, "page_size", 10, *_PAGE_SIZE)
        since, until = self._when(query, "start_time"), self._when(query, "end_time")
        status = query.get("status")
        if status is not None and status not in _LISTED:
            raise InvalidRequest([Violation("status", "enum", (
                f"status must be one of {', '.join(_LISTED)}; got {status[:40]!r}"))])
        phases = frozenset({_LISTED[status]} if status is not None else _LISTED.values())
        return ListQuery(offset=(page_no - 1) * page_size, limit=page_size, since=since,
                         until=None if until is None else until + 0.999_999, phases=phases,
                         model=query.get("model_name") or None)

    def _when(self, query: Mapping[str, str], name: str) -> float | None:
        """A ``YYYYMMDDhhmmss`` query parameter in the configured zone, as epoch seconds."""
        text = query.get(name)
        if text is None:
            return None
        try:
            if not _STAMP_RE.match(text):
                raise ValueError(text)
            stamp = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=self._zone)
        except ValueError:
            raise InvalidRequest([Violation(name, "pattern", (
                f"{name} must be a time as YYYYMMDDhhmmss (e.g. 20250108160359); got "
                f"{text[:40]!r}"))]) from None
        return stamp.timestamp()

    def render_list(self, views: Sequence[JobView], total: int, asked: ListQuery,
                    links: Links) -> Reply:
        tasks = []
        for view in views:
            record = view.record
            task: dict[str, Any] = {"task_id": view.id, "task_status": _STATUS[view.phase],
                                    "model_name": record.request.model,
                                    "submit_time": self._time(record.created_at)}
            if view.started_at is not None:
                task["scheduled_time"] = self._time(view.started_at)
            if view.finished_at is not None:
                task["end_time"] = self._time(view.finished_at)
            tasks.append(task)
        body = {"request_id": _STAMP, "page_no": asked.offset // asked.limit + 1,
                "page_size": asked.limit, "total": total, "tasks": tasks}
        return Reply(200, body, schema="dashscope/task-list")

    def render_cancel(self, result: CancelResult, links: Links) -> Reply:
        view = result.view
        if not result.cancelled_now and view.phase is not Phase.CANCELLED:
            return self.render_error(NotCancellable(view.id, _STATUS[view.phase], ["PENDING"]))
        body: dict[str, Any] = {"request_id": _STAMP}
        if self.config.cancel_output:
            body["output"] = {"task_id": view.id, "task_status": "CANCELED"}
        return Reply(200, body, schema="dashscope/cancel-response")

    def render_error(self, error: ApiError) -> Reply:
        status, code = self.errors[error.kind]
        message = error.message
        if isinstance(error, SyncNotSupported):
            status, code = ((403, "AccessDenied")
                            if self.config.sync_refusal is SyncRefusal.ACCESS_DENIED
                            else (400, "InvalidParameter"))
        elif isinstance(error, InvalidRequest):
            first = error.violations[0]
            if first.rule == "required" and first.field in _EMPTY:
                code = _EMPTY[first.field]
            message = f"{first.field}: {message}" if first.field not in message else message
        elif isinstance(error, InjectedFault):
            status = error.status
            code = _FAULTS.get(status, code)
        elif error.kind in ("job_not_found", "malformed_id", "job_forbidden") and (
                self.config.unknown_task is UnknownTask.UNKNOWN_STATUS):
            task_id = getattr(error, "job_id", "")
            if task_id:
                body = {"request_id": _STAMP,
                        "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
                return Reply(200, body, schema=_TASK)
        body = {"request_id": _STAMP, "code": code, "message": message}
        return Reply(status, body, error_headers(error), schema=_ERROR)

    def stamp(self, body: bytes) -> bytes:
        """A fresh request_id per answer (DashScope gives every response its own): rendered
        answers, memoised ones included, hold a placeholder in its place."""
        if not body.startswith(_STAMP_PREFIX):
            return body
        return _STAMP_PREFIX + str(uuid.uuid4()).encode() + body[_STAMP_END:]

    def _time(self, when: float) -> str:
        """``2025-01-08 16:03:59.840``: milliseconds, no zone (the zone is an option)."""
        stamp = datetime.fromtimestamp(when, UTC).astimezone(self._zone)
        return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"


def _whole(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``[low, high]`` (InvalidParameter naming it)."""
    text = query.get(name)
    if text is None:
        return default
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidRequest([Violation(name, "type", (
            f"{name} must be an integer; got {text[:40]!r}"))])
    # Past 12 digits the value is beyond every bound: judged by its sign, never converted.
    value = int(text) if len(digits) <= 12 else -(10**12) if text[0] == "-" else 10**12
    if not low <= value <= high:
        raise InvalidRequest([Violation(name, "minimum" if value < low else "maximum", (
            f"{name} must be {low}..{high}; got {text[:40]}"))])
    return value


def _pixels(size: str) -> int:
    width, _, height = size.partition("*")
    return int(width) * int(height or 1)


def _extended(prompt: str) -> str:
    """What prompt extension makes of a prompt (deterministic, recognisably longer)."""
    return f"{prompt}. Rich detail, natural light, balanced composition, high definition."
