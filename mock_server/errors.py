"""Every error wanmock raises, in one hierarchy.

Domain errors (subclasses of :class:`ApiError`) describe *what went wrong* in provider-neutral
terms; each provider dialect renders them into its own error body and status code in one table.
Messages say what was wrong, why, and what would be accepted instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "ApiError",
    "AuthError",
    "BodyTooLarge",
    "BudgetExceeded",
    "ConfigError",
    "InjectedFault",
    "InvalidRequest",
    "JobForbidden",
    "JobNotFound",
    "MalformedBody",
    "MalformedId",
    "MethodNotAllowed",
    "NotCancellable",
    "NotReady",
    "RateLimited",
    "RouteNotFound",
    "StateUnavailable",
    "SyncTimeout",
    "UnknownModel",
    "UnsupportedMediaType",
    "Violation",
    "WanmockError",
]


class WanmockError(Exception):
    """Base class of every error raised by wanmock."""


class ConfigError(WanmockError, ValueError):
    """A configuration value, CLI flag or TOML key is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule in a request body: which field, which rule, and a readable message."""

    field: str
    rule: str
    message: str


class ApiError(WanmockError):
    """An error answered to an API client. ``kind`` is a stable name the dialects map."""

    kind: ClassVar[str] = "api_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthError(ApiError):
    """Missing, malformed or unknown bearer key."""

    kind = "auth"


class MalformedBody(ApiError):
    """The body is not parseable JSON, or not a JSON object."""

    kind = "malformed_body"


class UnsupportedMediaType(ApiError):
    """The request's Content-Type is not ``application/json``."""

    kind = "unsupported_media_type"


class BodyTooLarge(ApiError):
    """The body exceeds the configured limit."""

    kind = "body_too_large"


class InvalidRequest(ApiError):
    """The body parsed but broke one or more schema rules."""

    kind = "invalid_request"

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        first = self.violations[0]
        more = len(self.violations) - 1
        message = first.message + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        super().__init__(message)

    @property
    def field(self) -> str:
        """The first offending field, as a dotted path."""
        return self.violations[0].field


class UnknownModel(ApiError):
    """The model id is not served by this provider."""

    kind = "unknown_model"

    def __init__(self, model: str, known: Sequence[str]) -> None:
        self.model = model
        self.known = tuple(known)
        super().__init__(
            f"model {model!r} is not available here; available: {', '.join(self.known)}"
        )


class MalformedId(ApiError):
    """The id in the path cannot be an id of this provider (wrong shape)."""

    kind = "malformed_id"


class JobNotFound(ApiError):
    """No job with this id exists (or it was evicted after expiry).

    ``reason`` says why, when the fake can tell (see :mod:`wanmock.server.ids`): ``expired``
    (it expired and the provider says so with a not-found), ``other-run`` (issued by an earlier
    run of the fake, or another server), ``forgotten`` (issued here, since evicted or reset),
    ``unknown`` (not an id this fake issued), or ``""`` (not said)."""

    kind = "job_not_found"

    _WHY: ClassVar[dict[str, str]] = {
        "": "does not exist",
        "expired": "has expired and was deleted",
        "unknown": "does not exist (no wanmock server issued this id: mistyped?)",
        "forgotten": "does not exist any more (it expired and was evicted, or the fake was "
                     "reset)",
        "other-run": "was issued by another run of the fake: in-memory state does not survive "
                     "a restart (use --state redis://… to keep jobs across restarts)",
    }

    def __init__(self, job_id: str, *, reason: str = "") -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id[:80]!r} {self._WHY.get(reason, self._WHY[''])}")

    @property
    def expired(self) -> bool:
        return self.reason == "expired"


class JobForbidden(ApiError):
    """The job exists but was submitted with another API key."""

    kind = "job_forbidden"

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} belongs to another API key")


class NotReady(ApiError):
    """A result or artifact was requested before the job succeeded."""

    kind = "not_ready"

    def __init__(self, job_id: str, status: str, hint: str = "", *, final: bool = False) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(
            f"job {job_id!r} is {status}: it did not succeed and will never have a result"
            if final else f"job {job_id!r} is {status}, not succeeded; no result yet{hint}")


class NotCancellable(ApiError):
    """Cancel asked for a job in a state that cannot be cancelled."""

    kind = "not_cancellable"

    def __init__(self, job_id: str, status: str, allowed: Sequence[str]) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(
            f"job {job_id!r} is {status} and cannot be cancelled; "
            f"only jobs that are {' or '.join(allowed)} can be"
        )


class BudgetExceeded(ApiError):
    """A limit of what the fake keeps per API key was reached (see ``[limits]``)."""

    kind = "budget_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class SyncTimeout(ApiError):
    """A synchronous generation ran past the edge deadline (the job itself goes on)."""

    kind = "sync_timeout"

    def __init__(self, job_id: str, deadline: float, polling_url: str, async_hint: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"the request exceeded the {deadline:g} s synchronous deadline; job {job_id} "
            f"continues: poll {polling_url} or {async_hint}"
        )


class RouteNotFound(ApiError):
    """No endpoint at this path."""

    kind = "route_not_found"

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"Route {method}:{path} not found")


class MethodNotAllowed(ApiError):
    """The path exists but not for this method."""

    kind = "method_not_allowed"

    def __init__(self, method: str, path: str, allowed: Sequence[str]) -> None:
        self.allowed = tuple(allowed)
        super().__init__(f"{method} is not allowed on {path}; allowed: {', '.join(self.allowed)}")


class RateLimited(ApiError):
    """Too many requests; ``retry_after`` is in (simulated) seconds."""

    kind = "rate_limited"

    def __init__(self, retry_after: float, message: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message or f"rate limit exceeded; retry after {retry_after:g} s")


class InjectedFault(ApiError):
    """An HTTP error the tester asked for (500/502/503/504...)."""

    kind = "injected_fault"

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class StateUnavailable(ApiError):
    """The shared simulation state (Redis) did not answer in time; nothing was done. Every
    provider answers its 503 with ``Retry-After``; the server recovers by itself."""

    kind = "state_unavailable"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)
