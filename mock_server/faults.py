"""Faults as named values, chosen in one place: rules, scripts, latency and rate limits.

:class:`FaultInjector` answers one question per request — "what happens to this response?" —
from (in order) the admin API's scripted responses, the per-key rate limit, then the configured
probabilistic rules; plus a response delay drawn from the endpoint's latency distribution.
It is pure apart from its seeded RNG and counters: the web layer applies what it decides.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .distributions import Distribution
from .errors import ConfigError
from .vocab import FaultKind, Operation, Phase, parse_enum

__all__ = [
    "PHASE_FILTERS",
    "Decision",
    "FaultInjector",
    "FaultRule",
    "RateLimit",
    "RateLimiter",
    "ScriptedFault",
    "parse_fault",
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


class RateLimiter:
    """Fixed-window request budgets per (bucket, key) on the simulated clock."""

    def __init__(self, limits: Mapping[str, RateLimit]) -> None:
        self.limits = dict(limits)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def check(self, bucket: str, key: str, now: float) -> float | None:
        """Count a request; ``None`` if within budget, else seconds until the window passes."""
        limit = self.limits.get(bucket)
        if limit is None:
            return None
        start = math.floor(now / limit.window) * limit.window
        window_start, used = self._windows.get((bucket, key), (start, 0))
        if window_start != start:
            used = 0
        used += 1
        self._windows[(bucket, key)] = (start, used)
        if len(self._windows) > 100_000:  # forget old windows of keys gone quiet
            self._windows = {k: v for k, v in self._windows.items() if v[0] >= start}
        return None if used <= limit.requests else start + limit.window - now

    def reset(self) -> None:
        self._windows.clear()


class FaultInjector:
    """Decides the fault and delay of each provider response."""

    def __init__(
        self,
        *,
        rules: Iterable[FaultRule] = (),
        latency: Mapping[Operation, Distribution] | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        timeout_delay: float = 300.0,
        seed: int = 0,
    ) -> None:
        self.rules = tuple(rules)
        self.latency = dict(latency or {})
        self.limiter = RateLimiter(rate_limits or {})
        self.timeout_delay = timeout_delay
        self.rng = random.Random(f"faults:{seed}")
        self._scripts: dict[tuple[str | None, Operation | None], deque[ScriptedFault]] = {}
        self._quiet: dict[tuple[str, Operation], bool] = {}

    def script(
        self, faults: Iterable[ScriptedFault], *, provider: str | None = None,
        operation: Operation | None = None,
    ) -> int:
        """Queue the next responses of an endpoint; returns how many are now scripted there."""
        queue = self._scripts.setdefault((provider, operation), deque())
        queue.extend(faults)
        return len(queue)

    def scripted(self) -> dict[str, list[str]]:
        """What is still scripted, by ``provider:operation`` (``*`` for any)."""
        return {f"{p or '*'}:{o or '*'}": [str(f.fault) for f in q]
                for (p, o), q in self._scripts.items() if q}

    def decide(
        self, provider: str, operation: Operation, phase: Phase | None, key: str, now: float
    ) -> Decision:
        """The fate of one response: scripted first, then rate limit, then random rules."""
        delay = self._latency(operation)
        for scope in ((provider, operation), (None, operation), (provider, None), (None, None)):
            queue = self._scripts.get(scope)
            if queue:
                item = queue.popleft()
                if item.fault is FaultKind.PASS:
                    return Decision(delay=delay, source="script")
                return self._decision(item.fault, item.retry_after, delay, "script")
        bucket = "submit" if operation is Operation.SUBMIT else "poll"
        wait = self.limiter.check(bucket, key, now) if key else None
        if wait is not None:
            return Decision(FaultKind.HTTP_429, max(wait, 1.0), delay, "rate-limit")
        for rule in self.rules:
            if rule.matches(provider, operation, phase) and self.rng.random() < rule.rate:
                return self._decision(rule.fault, rule.retry_after, delay, "rule")
        return Decision(delay=delay)

    def inert(self, provider: str, operation: Operation) -> bool:
        """True when :meth:`decide` would surely answer "nothing" for this endpoint *and* change
        no state doing so: no script could apply, no rate limit counts it, no latency or rule
        draws from the RNG. Lets the web layer skip the decision without changing any outcome.
        """
        scripts = self._scripts
        if scripts and any(scripts.get(scope) for scope in (
                (provider, operation), (None, operation), (provider, None), (None, None))):
            return False
        quiet = self._quiet.get((provider, operation))
        if quiet is None:  # rules, latency and limits are fixed for the injector's life
            bucket = "submit" if operation is Operation.SUBMIT else "poll"
            quiet = self._quiet[(provider, operation)] = (
                operation not in self.latency and bucket not in self.limiter.limits
                and not any(rule.operation in (None, operation)
                            and rule.provider in (None, provider) for rule in self.rules))
        return quiet

    def reset(self) -> None:
        """Forget scripts and rate-limit windows."""
        self._scripts.clear()
        self.limiter.reset()

    def _latency(self, operation: Operation) -> float:
        dist = self.latency.get(operation)
        return dist.sample(self.rng) if dist is not None else 0.0

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

