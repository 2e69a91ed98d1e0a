"""What a provider dialect is: routes, parsing into a neutral request, rendering views and errors.

A dialect holds only what differs between providers. The HTTP layer owns the flow
(authenticate → parse → engine → render) and calls the dialect at each step.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from wanmock import schemas

from ..config import Config
from ..engine import CancelResult
from ..errors import (
    ApiError,
    InjectedFault,
    InvalidRequest,
    MethodNotAllowed,
    RateLimited,
    Violation,
)
from ..lifecycle import JobRequest, JobView
from ..vocab import Operation, Phase

__all__ = [
    "COMMON_ERRORS",
    "Dialect",
    "Links",
    "Operation",
    "Reply",
    "Route",
    "compact_json",
    "error_headers",
    "error_responses",
    "iso8601",
    "schema_violations",
]


@dataclass(frozen=True, slots=True)
class Route:
    """One provider endpoint, declaratively: the HTTP app and /openapi.json are built from these."""

    operation: Operation
    method: str
    path: str
    summary: str
    #: Schema name of the JSON request body, if any.
    request_schema: str | None
    #: HTTP status -> (schema name of the body or ``None`` for no JSON body, description).
    responses: Mapping[int, tuple[str | None, str]]
    #: Query parameters: name -> (JSON schema, description).
    query: Mapping[str, tuple[Mapping[str, Any], str]] = field(default_factory=dict)
    #: JSON schemas of path parameters (what a well-formed id looks like).
    path_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """A rendered response: status, JSON body (``None``: empty), extra headers, its schema."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    schema: str | None = None


@dataclass(frozen=True, slots=True)
class Links:
    """Absolute URLs on the fake's own host, for rendering."""

    base: str
    #: Signed artifact URLs of a succeeded job, one per image.
    images: Callable[[JobView], list[str]]


class Dialect(Protocol):
    """A provider: its routes, its words, its bodies. See ``therouter.py`` for a full example."""

    name: ClassVar[str]
    title: ClassVar[str]
    #: Model ids this fake serves for the provider.
    models: ClassVar[tuple[str, ...]]
    routes: ClassVar[tuple[Route, ...]]
    #: Schema of the provider's error body.
    error_schema: ClassVar[str]
    #: Prefix of the paths this provider owns (for rendering route-level errors).
    path_prefixes: ClassVar[tuple[str, ...]]

    def __init__(self, config: Config) -> None: ...

    @property
    def retention(self) -> float:
        """Seconds from submit to ``expired``."""
        ...

    @property
    def cancellable(self) -> Collection[Phase]:
        """Phases in which cancel succeeds."""
        ...

    def new_id(self, rng: random.Random) -> str:
        """A fresh job id in the provider's format."""
        ...

    def check_id(self, job_id: str) -> None:
        """Raise :class:`~wanmock.server.errors.MalformedId` if ``job_id`` cannot be one of ours."""
        ...

    def parse_submit(
        self, body: Any, *, path_params: Mapping[str, str], query: Mapping[str, str]
    ) -> JobRequest:
        """Validate a submit body and turn it into a neutral request (defaults applied)."""
        ...

    def sync_deadline(self, query: Mapping[str, str]) -> float | None:
        """Seconds a synchronous submit may wait, or ``None`` for an async submit."""
        ...

    def render_submit(self, view: JobView, links: Links) -> Reply: ...

    def render_sync(self, view: JobView, links: Links) -> Reply:
        """The answer to a synchronous submit whose job reached a terminal phase."""
        ...

    def render_status(self, view: JobView, links: Links) -> Reply: ...

    def render_result(self, view: JobView, links: Links) -> Reply: ...

    def render_cancel(self, result: CancelResult, links: Links) -> Reply: ...

    def render_content(self, view: JobView, links: Links, query: Mapping[str, str]) -> Reply: ...

    def render_error(self, error: ApiError) -> Reply:
        """The provider's error body and status for a domain error."""
        ...


#: Statuses any provider endpoint can answer: a bad key, a rate limit, injected faults.
COMMON_ERRORS = (401, 429, 500, 502, 503, 504)


def error_responses(schema: str, *codes: int) -> dict[int, tuple[str | None, str]]:
    """Route-table entries for error statuses: ``codes`` plus :data:`COMMON_ERRORS`."""
    return {code: (schema, "error") for code in sorted({*codes, *COMMON_ERRORS})}


def schema_violations(schema: str, body: Any) -> InvalidRequest | None:
    """Check ``body`` against a request schema; the error names each field and rule."""
    issues = schemas.check(schema, body)
    if not issues:
        return None
    return InvalidRequest([Violation(i.field, i.rule, i.message) for i in issues])


def error_headers(error: ApiError) -> dict[str, str]:
    """HTTP headers every provider sends with an error: ``Allow`` on 405, ``Retry-After``."""
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed):
        headers["allow"] = ", ".join(error.allowed)
    if isinstance(error, RateLimited | InjectedFault) and error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    return headers


_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: Recent distinct ``compact_json`` results: a load test's jobs mostly differ only in their
#: prompts, so their kept bodies are one shared object instead of a copy per job (~140 bytes).
_SHARED: dict[bytes, bytes] = {}


def compact_json(body: Mapping[str, Any]) -> bytes:
    """The body without its prompt as sorted, compact JSON bytes (how requests are kept)."""
    kept = _COMPACT.encode({k: v for k, v in body.items() if k != "prompt"}).encode()
    shared = _SHARED.get(kept)
    if shared is None:
        if len(_SHARED) >= 1024:
            _SHARED.clear()
        shared = _SHARED[kept] = kept
    return shared


def iso8601(when: float) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``."""
    stamp = datetime.fromtimestamp(when, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
