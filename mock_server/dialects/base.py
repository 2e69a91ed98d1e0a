"""What a provider is: one module holding everything that differs between providers.

A provider module defines a class satisfying :class:`Dialect`: its options (the ``[name]`` config
section), routes, id shape, polling URL, status words, request parsing into a neutral
:class:`~wanmock.server.lifecycle.JobRequest`, rendering of neutral views and domain errors into
its JSON, and the facts a client of it needs (:class:`ClientFacts`: paths, body shapes, words,
price, real base URL — used by the contract drivers, strategies, smoke mode and load tester).
Operations only some providers have are small separate protocols (:class:`Synchronous`,
:class:`Results`, :class:`Contents`, :class:`Listing`, :class:`Stamped`). Nothing outside the
module and its ``schemas/<name>/`` folder names the provider. The HTTP layer owns the flow
(authenticate → parse → engine → render).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from wanmock import schemas

from ..engine import CancelResult
from ..errors import (
    ApiError,
    BudgetExceeded,
    InjectedFault,
    InvalidRequest,
    MethodNotAllowed,
    RateLimited,
    StateUnavailable,
    Violation,
)
from ..lifecycle import JobRequest, JobView
from ..vocab import Operation, Phase

__all__ = [
    "COMMON_ERRORS",
    "ClientFacts",
    "Contents",
    "Dialect",
    "Endpoint",
    "Links",
    "ListQuery",
    "Listing",
    "Operation",
    "Reply",
    "Results",
    "Route",
    "Stamped",
    "SubmitInput",
    "Synchronous",
    "compact_json",
    "compile_path",
    "error_headers",
    "error_responses",
    "iso8601",
    "retry_after_header",
    "schema_violations",
    "template",
    "times_out_of_order",
    "unstamped",
]

#: A path parameter in a route: ``{name}`` or ``{name:path}`` (which may contain ``/``).
_PARAM = re.compile(r"\{([a-z_]+)(?::(path|str))?\}")


def compile_path(path: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """The one parser of route syntax: a regex matching the path and its parameter names.

    >>> pattern, names = compile_path("/v1/jobs/{job_id}/content")
    >>> names, pattern.match("/v1/jobs/img_1/content")["job_id"]
    (('job_id',), 'img_1')
    >>> pattern.match("/v1/jobs/a/b/content") is None
    True
    """
    parts, names, last = [], [], 0
    for match in _PARAM.finditer(path):
        parts.append(re.escape(path[last:match.start()]))
        name, converter = match.group(1), match.group(2)
        body = r"[\s\S]+" if converter == "path" else r"[^/]+"
        parts.append(f"(?P<{name}>{body})")
        names.append(name)
        last = match.end()
    parts.append(re.escape(path[last:]))
    return re.compile("^" + "".join(parts) + r"\Z"), tuple(names)


def template(path: str) -> str:
    """A route path in OpenAPI's form: converters dropped (``{model_id:path}`` → ``{model_id}``).
    """
    return _PARAM.sub(r"{\1}", path)


@dataclass(frozen=True, slots=True)
class Route:
    """One provider endpoint, declaratively: the edge, /openapi.json and the contract checker's
    status→schema map are all built from these."""

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
    #: Request headers that change the protocol: name -> (JSON schema, description).
    headers: Mapping[str, tuple[Mapping[str, Any], str]] = field(default_factory=dict)

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled path (see :func:`compile_path`)."""
        return _compiled(self.path)[0]

    def well_formed(self, name: str, value: str) -> bool:
        """Whether a path parameter matches its declared ``pattern`` (``True`` if none)."""
        declared = self.path_params.get(name, {}).get("pattern")
        return declared is None or schemas.ecma_regex(declared).search(value) is not None


_PATTERNS: dict[str, tuple[re.Pattern[str], tuple[str, ...]]] = {}


def _compiled(path: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    found = _PATTERNS.get(path)
    if found is None:
        found = _PATTERNS[path] = compile_path(path)
    return found


@dataclass(frozen=True, slots=True)
class SubmitInput:
    """Everything a submit request carries that a provider may read."""

    body: Any
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    #: Request headers by lower-case name.
    headers: Mapping[str, str] = field(default_factory=dict)


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


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A client's view of one endpoint: method, path template (``{id}`` for the job id), and
    the query parameters and headers it always sends."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def url_path(self, job_id: str = "") -> str:
        return self.path.replace("{id}", job_id)


def _dig(body: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        body = body[name]
    return body


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientFacts:
    """What a client of the provider needs to know, as data: the contract drivers, Hypothesis
    strategies, ``wanmock verify``/``smoke`` and ``wanmock load`` are generic over these."""

    model: str
    submit: Endpoint
    status: Endpoint
    cancel: Endpoint
    #: Where results are fetched, when not in the status answer.
    result: Endpoint | None
    #: A minimal valid submit body for a prompt.
    body: Callable[[str], dict[str, Any]]
    #: Where the prompt sits in a submit body (``("input", "prompt")``).
    prompt_field: tuple[str, ...]
    #: Where the job id sits in the submit answer.
    id_field: tuple[str, ...]
    #: Where the status word sits in a status answer, and what each word means.
    status_field: tuple[str, ...]
    phases: Mapping[str, Phase]
    #: The image URLs in a finished job's result (or status) answer.
    image_urls: Callable[[Any], list[str]]
    #: Whether a cancel answer says the job was cancelled.
    cancelled: Callable[[Any], bool]
    #: URL fields of the submit answer and the path each must have (``{id}``), and whether the
    #: provider documents them as always present.
    url_fields: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    #: A well-formed id that names no job.
    unknown_id: str
    request_schema: str
    #: Body fields the provider checks beyond its schema (a served model, say).
    fixed_fields: Mapping[str, Any] = field(default_factory=dict)
    #: Whether the provider accepts a schema-valid body (its arithmetic rules beyond the
    #: schema, such as DashScope's 2-megapixel limit; for generated bodies).
    accepts: Callable[[Any], bool] = field(default=lambda body: True)
    #: Where the generation seed sits in a submit body.
    seed_field: tuple[str, ...] = ("seed",)
    real_base_url: str
    #: What a client library takes as its base URL, relative to the server's root (DashScope's
    #: SDK wants ``…/api/v1``).
    base_path: str = ""
    #: Environment variable holding the real API key.
    key_env: str
    #: USD per image, and where the figure comes from.
    price_per_image: float
    price_source: str = ""
    #: Only queued jobs may be cancelled (judged by ``wanmock verify``).
    cancel_only_queued: bool = True
    #: What a status or result answer's schema cannot see: times out of order, a retention
    #: other than the documented one (given: the default options' ``retention``), counts that
    #: disagree (judged by ``wanmock verify``).
    answer_problems: Callable[[Any, float], list[str]] = field(
        default=lambda answer, retention: [])

    def job_id(self, submitted: Any) -> str:
        return str(_dig(submitted, self.id_field))

    def phase(self, answer: Any) -> Phase:
        """The neutral phase in a status answer; ``ValueError`` names an unknown word."""
        try:
            word = _dig(answer, self.status_field)
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"no {'.'.join(self.status_field)} in the answer") from None
        if word not in self.phases:
            raise ValueError(f"unknown status word {word!r}; expected one of "
                             f"{', '.join(self.phases)}")
        return self.phases[word]


class Dialect(Protocol):
    """A provider: its options, routes, words and bodies. See ``therouter.py`` for an example."""

    name: ClassVar[str]
    title: ClassVar[str]
    #: Model ids this fake serves for the provider.
    models: ClassVar[tuple[str, ...]]
    routes: ClassVar[tuple[Route, ...]]
    #: Schema of the provider's error body, and of its answer to a path it has no route for.
    error_schema: ClassVar[str]
    route_not_found_schema: ClassVar[str]
    #: Path prefixes this provider owns (unknown paths under them get its 404 shape).
    path_prefixes: ClassVar[tuple[str, ...]]
    #: The typed options of its ``[name]`` config section (a frozen dataclass with defaults).
    Options: ClassVar[type[Any]]
    client: ClassVar[ClientFacts]
    #: Domain error kind -> how the provider answers it (every kind: a test checks).
    errors: ClassVar[Mapping[str, Any]]

    def __init__(self, options: Any) -> None: ...

    @property
    def retention(self) -> float:
        """Seconds from submit to ``expired``."""
        ...

    @property
    def cancellable(self) -> Collection[Phase]:
        """Phases in which cancel succeeds."""
        ...

    def new_id(self, rng: random.Random, tag: bytes) -> str:
        """A fresh job id in the provider's shape (see :mod:`wanmock.server.ids`)."""
        ...

    def parse_id(self, job_id: str) -> bytes:
        """The id's 16 bytes, or :class:`~wanmock.server.errors.MalformedId` if ``job_id``
        cannot be one of this provider's."""
        ...

    def polling_url(self, base: str, job_id: str) -> str:
        """Where a client polls this job."""
        ...

    def parse_submit(self, submitted: SubmitInput) -> JobRequest:
        """Validate a submit and turn it into a neutral request (defaults applied)."""
        ...

    def sync_deadline(self, submitted: SubmitInput) -> float | None:
        """Seconds a synchronous submit may wait, or ``None`` for an async submit."""
        ...

    def render_submit(self, view: JobView, links: Links) -> Reply: ...

    def render_status(self, view: JobView, links: Links) -> Reply: ...

    def render_cancel(self, result: CancelResult, links: Links) -> Reply: ...

    def render_error(self, error: ApiError) -> Reply:
        """The provider's error body and status for a domain error."""
        ...


@runtime_checkable
class Synchronous(Protocol):
    """A provider whose submit can wait for the job (:meth:`Dialect.sync_deadline` not None)."""

    #: How to submit without waiting, in the provider's words (said when the deadline passes).
    async_hint: ClassVar[str]

    def render_sync(self, view: JobView, links: Links) -> Reply:
        """The answer to a synchronous submit: the job ended, or the deadline passed."""
        ...


@runtime_checkable
class Results(Protocol):
    """A provider with a result endpoint of its own."""

    def render_result(self, view: JobView, links: Links) -> Reply: ...


@runtime_checkable
class Contents(Protocol):
    """A provider with an artifact endpoint that redirects to the image."""

    def render_content(self, view: JobView, links: Links, query: Mapping[str, str]) -> Reply: ...


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a job-list request asks, provider-neutral (see ``SimState.jobs_of``)."""

    offset: int
    limit: int
    #: Submit-time bounds, inclusive (``None``: open).
    since: float | None = None
    until: float | None = None
    #: Phases at the time of the request (``None``: any).
    phases: frozenset[Phase] | None = None
    model: str | None = None


@runtime_checkable
class Listing(Protocol):
    """A provider with an endpoint listing the caller's jobs, a page at a time."""

    def parse_list(self, query: Mapping[str, str], now: float) -> ListQuery:
        """The query string as a neutral request (:class:`InvalidRequest` naming a bad
        parameter)."""
        ...

    def render_list(self, views: Sequence[JobView], total: int, asked: ListQuery,
                    links: Links) -> Reply: ...


@runtime_checkable
class Stamped(Protocol):
    """A provider whose every answer carries a value of its own (DashScope's ``request_id``).

    Replies are rendered (and memoised) with :attr:`stamp_placeholder` right after
    :attr:`stamp_prefix` at the very start of the encoded body; :meth:`stamp` puts a fresh value
    of the same length in its place each time an answer is sent, memoised or not."""

    stamp_prefix: ClassVar[bytes]
    stamp_placeholder: ClassVar[bytes]

    def stamp(self, body: bytes) -> bytes:
        """``body`` with a fresh value in place of the placeholder (unchanged without one)."""
        ...


def unstamped(dialect: object, body: bytes) -> bytes:
    """``body`` with its per-call value put back to the placeholder (to compare two answers
    that differ only in it); any other body, or another provider's, unchanged."""
    if not isinstance(dialect, Stamped) or not body.startswith(dialect.stamp_prefix):
        return body
    start = len(dialect.stamp_prefix)
    end = start + len(dialect.stamp_placeholder)
    return body[:start] + dialect.stamp_placeholder + body[end:]


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
    if isinstance(error, RateLimited | InjectedFault | BudgetExceeded | StateUnavailable) and (
            error.retry_after is not None):
        headers["retry-after"] = retry_after_header(error.retry_after)
    return headers


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded *up* (at least 1) — a client that waits
    what it is told must never come back before the window ends (40.4 s is said as 41)."""
    return str(max(1, math.ceil(seconds)))


_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: Recent distinct ``compact_json`` results: a load test's jobs mostly differ only in their
#: prompts, so their kept bodies are one shared object instead of a copy per job (~140 bytes).
_SHARED: dict[bytes, bytes] = {}


def compact_json(body: Mapping[str, Any], prompt_path: tuple[str, ...] = ("prompt",)) -> bytes:
    """The body without its prompt as sorted, compact JSON bytes (how requests are kept)."""
    kept = _COMPACT.encode(_without(body, prompt_path)).encode()
    shared = _SHARED.get(kept)
    if shared is None:
        if len(_SHARED) >= 1024:
            _SHARED.clear()
        shared = _SHARED[kept] = kept
    return shared


def _without(body: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    head, rest = path[0], path[1:]
    copy = {k: v for k, v in body.items() if k != head or rest}
    if rest and isinstance(copy.get(head), Mapping):
        copy[head] = _without(copy[head], rest)
    return copy


def times_out_of_order(where: Any, names: Sequence[str], prefix: str = "") -> list[str]:
    """Each pair of the time fields ``names`` of ``where`` (in the order they must come) that
    are out of order; absent, null or unreadable fields are left to the schema.

    >>> times_out_of_order({"created_at": "2025-01-02T00:00:00.000Z",
    ...                     "finished_at": "2025-01-01T00:00:00.000Z"},
    ...                    ("created_at", "finished_at"))
    ['finished_at 2025-01-01T00:00:00.000Z is before created_at 2025-01-02T00:00:00.000Z']
    """
    known: list[tuple[str, Any, datetime]] = []
    for name in names:
        value = where.get(name) if isinstance(where, dict) else None
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            known.append((name, value, when.replace(tzinfo=when.tzinfo or UTC)))
    problems = []
    for (early, early_value, first), (late, late_value, then) in itertools.pairwise(known):
        if then < first:
            problems.append(f"{prefix}{late} {late_value} is before {prefix}{early} "
                            f"{early_value}")
    return problems


def iso8601(when: float) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``."""
    stamp = datetime.fromtimestamp(when, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
