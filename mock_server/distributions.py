"""Durations drawn from named distributions: ``fixed``, ``uniform``, ``lognormal``.

A distribution is a frozen value with ``sample(rng) -> seconds``. They are written in config as
``"uniform(30, 180)"`` or as a TOML table ``{kind = "uniform", low = 30, high = 180}``.

>>> import random
>>> parse_distribution("fixed(60)").sample(random.Random(0))
60.0
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import MISSING, dataclass, fields
from typing import Any, Protocol

from .errors import ConfigError
from .vocab import suggest

__all__ = ["Distribution", "Fixed", "LogNormal", "Uniform", "parse_distribution"]


class Distribution(Protocol):
    """Something that draws a non-negative duration in seconds."""

    def sample(self, rng: random.Random) -> float:
        """Draw one value."""
        ...

    @property
    def upper(self) -> float:
        """The largest value a draw can take (``inf`` when unbounded)."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always ``value`` seconds."""

    value: float

    def __post_init__(self) -> None:
        _check_non_negative("fixed", value=self.value)

    def sample(self, rng: random.Random) -> float:
        return float(self.value)

    @property
    def upper(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        return f"fixed({self.value:g})"


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniformly between ``low`` and ``high`` seconds."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_non_negative("uniform", low=self.low, high=self.high)
        if self.high < self.low:
            raise ConfigError(f"uniform(low={self.low}, high={self.high}): high must be >= low")

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    @property
    def upper(self) -> float:
        return float(self.high)

    def __str__(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal with the given ``median`` and ``sigma`` (of the log), clamped to ``[low, high]``.

    Long right tail: most jobs near the median, a few very slow ones — what real queues look like.
    """

    median: float
    sigma: float = 0.5
    low: float = 0.0
    high: float = math.inf

    def __post_init__(self) -> None:
        _check_non_negative("lognormal", median=self.median, sigma=self.sigma, low=self.low)
        if self.median <= 0:
            raise ConfigError(f"lognormal(median={self.median}): median must be > 0")
        if self.high < self.low:
            raise ConfigError(f"lognormal(low={self.low}, high={self.high}): high must be >= low")

    def sample(self, rng: random.Random) -> float:
        value = rng.lognormvariate(math.log(self.median), self.sigma)
        return min(max(value, self.low), self.high)

    @property
    def upper(self) -> float:
        return float(self.high)

    def __str__(self) -> str:
        return f"lognormal(median={self.median:g}, sigma={self.sigma:g})"


_KINDS: dict[str, type[Fixed] | type[Uniform] | type[LogNormal]] = {
    "fixed": Fixed,
    "uniform": Uniform,
    "lognormal": LogNormal,
}
#: What to suggest when a distribution is written wrongly.
_EXAMPLES = {"fixed": "fixed(60)", "uniform": "uniform(30, 180)",
             "lognormal": "lognormal(median=60, sigma=0.5)"}
_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$")


def parse_distribution(value: Any, *, name: str = "distribution") -> Distribution:
    """Build a distribution from ``"uniform(30, 180)"``, a number, or a ``{kind = ...}`` table.

    ``name`` is the config key; every error message starts with it and says what would be
    accepted:

    >>> parse_distribution("lognormal(medain=60)", name="lifecycle.run_time")
    Traceback (most recent call last):
    ...
    wanmock.server.errors.ConfigError: lifecycle.run_time: lognormal(medain=60): unknown \
parameter 'medain'; did you mean 'median'? valid: high, low, median, sigma
    """
    if isinstance(value, Fixed | Uniform | LogNormal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _build(name, "fixed", [value], {})
    if isinstance(value, dict):
        params = dict(value)
        kind = params.pop("kind", None)
        if kind is None:
            raise ConfigError(f"{name}: a distribution table needs a kind; write e.g. "
                              "{kind = \"uniform\", low = 30, high = 180}")
        return _build(name, kind, [], params)
    if isinstance(value, str):
        match = _CALL.match(value)
        if not match:
            raise ConfigError(
                f"{name}: cannot read {value!r}; write e.g. 'fixed(60)', 'uniform(30, 180)' "
                "or 'lognormal(median=60, sigma=0.5)'"
            )
        kind, inner = match.groups()
        args: list[float] = []
        kwargs: dict[str, Any] = {}
        for part in (p.strip() for p in inner.split(",")) if inner.strip() else ():
            key, eq, raw = part.partition("=")
            if not part:
                raise ConfigError(f"{name}: {value.strip()}: an empty parameter (a stray comma?)")
            try:
                number = float(raw if eq else key)
            except ValueError:
                what = f"{key.strip()} = {raw.strip()!r}" if eq else repr(part)
                raise ConfigError(f"{name}: {value.strip()}: {what} is not a number") from None
            if eq:
                if key.strip() in kwargs:
                    raise ConfigError(f"{name}: {value.strip()}: {key.strip()} is given twice")
                kwargs[key.strip()] = number
            else:
                if kwargs:
                    raise ConfigError(f"{name}: {value.strip()}: a positional parameter "
                                      "follows a named one; name them all")
                args.append(number)
        return _build(name, kind, args, kwargs)
    raise ConfigError(f"{name}: expected a distribution such as 'uniform(30, 180)', "
                      f"got {value!r}")


def _build(name: str, kind: Any, args: list[Any], kwargs: dict[str, Any]) -> Distribution:
    """Bind the parameters by name, so every mistake is reported against the config key."""
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(f"{name}: unknown distribution {kind!r}; {suggest(str(kind), _KINDS)}")
    call = _call_text(kind, args, kwargs)
    params = [f for f in fields(cls) if f.init]
    names = [f.name for f in params]
    if len(args) > len(names):
        most = f"{len(names)} parameter{'s' if len(names) > 1 else ''}"
        raise ConfigError(f"{name}: {call}: {kind}() takes at most {most} "
                          f"({', '.join(names)}), got {len(args)}; write e.g. "
                          f"{_EXAMPLES[kind]!r}")
    bound: dict[str, Any] = dict(zip(names, args, strict=False))
    for key, number in kwargs.items():
        if key not in names:
            raise ConfigError(f"{name}: {call}: unknown parameter {key!r}; {suggest(key, names)}")
        if key in bound:
            raise ConfigError(f"{name}: {call}: {key} is given twice (by position and by name)")
        bound[key] = number
    required = [f.name for f in params if f.default is MISSING]
    if any(key not in bound for key in required):
        raise ConfigError(f"{name}: {kind}() needs {' and '.join(required)}; got {call!r}; "
                          f"write e.g. {_EXAMPLES[kind]!r}")
    for key, number in bound.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ConfigError(f"{name}: {call}: {key} must be a number, got {number!r}")
    try:
        return cls(**bound)
    except ConfigError as exc:  # a rule of the distribution itself (high >= low, ...)
        # The rule's message reads "uniform(low=5, high=1): high must be >= low"; show the
        # parameters as the user wrote them instead.
        reason = str(exc).partition("): ")[2] or str(exc)
        raise ConfigError(f"{name}: {call}: {reason}") from None


def _call_text(kind: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """How the user wrote it, e.g. ``lognormal(medain=60)`` (tables are shown the same way)."""

    def show(value: Any) -> str:
        plain = isinstance(value, int | float) and not isinstance(value, bool)
        return f"{value:g}" if plain else repr(value)

    parts = [*map(show, args), *(f"{key}={show(value)}" for key, value in kwargs.items())]
    return f"{kind}({', '.join(parts)})"


def _check_non_negative(kind: str, **values: float) -> None:
    for key, number in values.items():
        if not (isinstance(number, int | float) and number >= 0):
            raise ConfigError(f"{kind}({key}={number!r}): {key} must be a number >= 0")
