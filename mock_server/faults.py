"""Faults as named values, chosen in one place: rules, scripts, latency and rate limits.

One question per request — "what happens to this response?" — answered from (in order) the admin
API's scripted responses, the per-key rate limit, then the configured probabilistic rules; plus a
response delay drawn from the endpoint's latency distribution. Scripts and rate-limit windows are
shared mutable state and live in the simulation state (:class:`Passage` is what it answers);
:class:`FaultRules` is the immutable rest. The web layer applies what is decided.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .distributions import Distribution
from .errors import ConfigError
from .vocab import FaultKind, Operation, Phase, parse_enum

__all__ = [
    "PHASE_FILTERS",
    "Decision",
    "FaultRule",
    "FaultRules",
    "Passage",
    "RateLimit",
    "ScriptedFault",
    "bucket_of",
    "count_in_window",
    "parse_fault",
    "script_scopes",
]

#: Phase filters a rule may name besides a phase itself.
PHASE_FILTERS = ("any", "none", "queued", "running", "terminal")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRule:
    """``fault`` on ``rate`` of the matching requests, e.g. 503 on 5 % of polls while running."""

    fault: FaultKind
    rate: float = 1.0
    #: Operation it applies to; ``None``: every provider endpoint.
    operation: Operation | None = None
    #: Provider it applies to; ``None``: both.
    provider: str | None = None
    #: Phase of the job addressed: any, none (no job yet: submit), queued, running, terminal.
    phase: str = "any"
    #: Seconds in ``Retry-After`` (429 and 503 answers).
    retry_after: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ConfigError(f"faults.rules: rate must be in [0, 1], got {self.rate}")
        if self.phase not in PHASE_FILTERS:
            raise ConfigError(f"faults.rules: phase {self.phase!r} is not one of "
                              f"{', '.join(PHASE_FILTERS)}")

    def matches(self, provider: str, operation: Operation, phase: Phase | None) -> bool:
        if self.operation is not None and self.operation is not operation:
            return False
        if self.provider is not None and self.provider != provider:
            return False
        return _phase_matches(self.phase, phase)


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    """One scripted response: a fault (or ``pass``) with its ``Retry-After``."""

    fault: FaultKind
    retry_after: float = 5.0


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one response."""

    fault: FaultKind | None = None
    retry_after: float | None = None
    #: Simulated seconds to hold the response before answering.
    delay: float = 0.0
    #: Where the fault came from: ``script``, ``rate-limit`` or ``rule``.
    source: str = ""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``requests`` per ``window`` seconds, per API key; written ``"20/60"``."""

    requests: int
    window: float

    @classmethod
    def parse(cls, text: str, *, name: str) -> RateLimit:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(s)?\s*", text)
        if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
            raise ConfigError(f"{name}: write a budget as 'REQUESTS/SECONDS', e.g. '20/60'; "
                              f"got {text!r}")
        return cls(int(match.group(1)), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.requests}/{self.window:g}"


def count_in_window(window: tuple[float, int] | None, limit: RateLimit,
                    now: float) -> tuple[tuple[float, int], float | None]:
    """Count one request in a fixed window: the new ``(window start, used)`` and, when over
    budget, the seconds until the window passes (the ``Retry-After``).

    >>> limit = RateLimit(2, 60)
    >>> w, wait = count_in_window(None, limit, 10.0); w, wait
    ((0.0, 1), None)
    >>> w, wait = count_in_window(w, limit, 20.0); w, wait = count_in_window(w, limit, 30.0)
    >>> w, wait
    ((0.0, 3), 30.0)
    """
    start = float(math.floor(now / limit.window) * limit.window)
    used = window[1] if window is not None and window[0] == start else 0
    used += 1
    return (start, used), (None if used <= limit.requests else start + limit.window - now)


@dataclass(frozen=True, slots=True)
class Passage:
    """What the state answered for the gate every provider request passes first: the scripted
    response it consumed, and how long until its rate-limit window passes if over budget."""

    script: ScriptedFault | None = None
    wait: float | None = None

    @property
    def blocks(self) -> bool:
        """The request is answered with an error before anything happens (a scripted error
        status, or over its rate-limit budget)."""
        return self.wait is not None or (self.script is not None
                                         and self.script.fault.status is not None)


def script_scopes(provider: str, operation: Operation
                  ) -> tuple[tuple[str | None, Operation | None], ...]:
    """Where a scripted response for this endpoint may be queued, most specific first."""
    return ((provider, operation), (None, operation), (provider, None), (None, None))


def bucket_of(operation: Operation) -> str:
    """The rate-limit budget a request counts against: ``submit`` or ``poll``."""
    return "submit" if operation is Operation.SUBMIT else "poll"


class FaultRules:
    """The configured, probabilistic part of fault decisions: rules, latency, the timeout
    delay. Immutable; the random draws come from the caller's generator and the shared part
    (scripts, rate windows) from the simulation state's :class:`Passage`."""

    def __init__(
        self,
        *,
        rules: Iterable[FaultRule] = (),
        latency: Mapping[Operation, Distribution] | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        timeout_delay: float = 300.0,
    ) -> None:
        self.rules = tuple(rules)
        self.latency = dict(latency or {})
        self.rate_limits = dict(rate_limits or {})
        self.timeout_delay = timeout_delay
        self._armed: dict[tuple[str, Operation], bool] = {}

    def limit(self, operation: Operation) -> RateLimit | None:
        """The per-key budget this endpoint counts against, if any."""
        return self.rate_limits.get(bucket_of(operation))

    def armed(self, provider: str, operation: Operation) -> bool:
        """True when a rule or a latency applies to this endpoint (a draw must be made)."""
        armed = self._armed.get((provider, operation))
        if armed is None:
            armed = self._armed[(provider, operation)] = operation in self.latency or any(
                rule.operation in (None, operation) and rule.provider in (None, provider)
                for rule in self.rules)
        return armed

    def decide(self, passage: Passage, provider: str, operation: Operation,
               phase: Phase | None, rng: random.Random) -> Decision:
        """The fate of one response: scripted first, then rate limit, then random rules."""
        delay = self._latency(operation, rng)
        script = passage.script
        if script is not None:
            if script.fault is FaultKind.PASS:
                return Decision(delay=delay, source="script")
            return self._decision(script.fault, script.retry_after, delay, "script")
        if passage.wait is not None:
            return Decision(FaultKind.HTTP_429, max(passage.wait, 1.0), delay, "rate-limit")
        for rule in self.rules:
            if rule.matches(provider, operation, phase) and rng.random() < rule.rate:
                return self._decision(rule.fault, rule.retry_after, delay, "rule")
        return Decision(delay=delay)

    def _latency(self, operation: Operation, rng: random.Random) -> float:
        dist = self.latency.get(operation)
        return dist.sample(rng) if dist is not None else 0.0

    def _decision(self, fault: FaultKind, retry_after: float, delay: float,
                  source: str) -> Decision:
        if fault is FaultKind.TIMEOUT:
            delay += self.timeout_delay
        keeps_retry_after = fault in (FaultKind.HTTP_429, FaultKind.HTTP_503)
        return Decision(fault, retry_after if keeps_retry_after else None, delay, source)


def parse_fault(value: object, *, name: str) -> FaultKind:
    """A :class:`FaultKind` from its name, with "did you mean" on a typo."""
    return parse_enum(FaultKind, value, name=name)


def _phase_matches(wanted: str, phase: Phase | None) -> bool:
    if wanted == "any":
        return True
    if wanted == "none":
        return phase is None
    if phase is None:
        return False
    if wanted == "terminal":
        return phase.terminal
    return phase.value == wanted

