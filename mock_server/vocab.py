"""Closed vocabularies as ``str`` enums, and the one function that parses them.

Every closed set of words (job phases, failure kinds, ...) is an enum here; user input is
turned into one by :func:`parse_enum`, which lists the valid words and suggests the closest.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from typing import TypeVar

from .errors import ConfigError

__all__ = ["FailureKind", "FaultKind", "Operation", "Phase", "parse_enum", "suggest"]

E = TypeVar("E", bound=enum.Enum)


class Phase(enum.StrEnum):
    """Provider-neutral job phase. Dialects translate these into their own status words."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        """True once the job will never run again."""
        return self not in (Phase.QUEUED, Phase.RUNNING)

    @property
    def rank(self) -> int:
        """Monotone order of phases: a job's rank never decreases over time."""
        return _RANK[self]


_RANK = {
    Phase.QUEUED: 0,
    Phase.RUNNING: 1,
    Phase.SUCCEEDED: 2,
    Phase.FAILED: 2,
    Phase.CANCELLED: 2,
    Phase.EXPIRED: 3,
}


class FailureKind(enum.StrEnum):
    """Why a job failed; each dialect renders it with the provider's own code and message."""

    MODERATION = "moderation"
    INTERNAL = "internal"
    TIMEOUT = "timeout"


class Operation(enum.StrEnum):
    """The generic endpoints every provider has (``download`` is the artifact URL)."""

    SUBMIT = "submit"
    STATUS = "status"
    RESULT = "result"
    CANCEL = "cancel"
    CONTENT = "content"
    DOWNLOAD = "download"
    LIST = "list"  #: the key's jobs, a page at a time (providers implementing ``Listing``)


class FaultKind(enum.StrEnum):
    """Named HTTP-level faults (WireMock's ``Fault`` plus status codes)."""

    HTTP_429 = "http-429"  #: rate limited, with ``Retry-After``
    HTTP_500 = "http-500"
    HTTP_502 = "http-502"
    HTTP_503 = "http-503"
    HTTP_504 = "http-504"
    TIMEOUT = "timeout"  #: the normal answer, delayed past any sane client timeout
    DROP = "drop"  #: headers sent, then the connection is closed mid-body
    MALFORMED_JSON = "malformed-json"  #: the body is not valid JSON
    TRUNCATED_JSON = "truncated-json"  #: the body is cut in half (Content-Length matches)
    EMPTY_BODY = "empty-body"  #: status and headers as usual, no body
    PASS = "pass"  #: no fault (useful in scripts: "let this one through")

    @property
    def status(self) -> int | None:
        """The HTTP status an error fault answers with."""
        return int(self.value[5:]) if self.value.startswith("http-") else None


def suggest(word: str, valid: Iterable[str]) -> str:
    """A sentence listing the valid words, led by the closest match to ``word`` if any."""
    options = sorted(valid)
    close = difflib.get_close_matches(word, options, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}valid: {', '.join(options)}"


def parse_enum(cls: type[E], value: object, *, name: str) -> E:
    """Turn ``value`` into a member of ``cls`` or raise :class:`ConfigError` naming ``name``."""
    if isinstance(value, cls):
        return value
    by_value = {str(member.value): member for member in cls}
    if isinstance(value, str) and value in by_value:
        return by_value[value]
    raise ConfigError(f"{name}: unknown value {value!r}; {suggest(str(value), by_value)}")
