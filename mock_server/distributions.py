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
from dataclasses import dataclass
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
_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$")


def parse_distribution(value: Any, *, name: str = "distribution") -> Distribution:
    """Build a distribution from ``"uniform(30, 180)"``, a number, or a ``{kind = ...}`` table.

    ``name`` is the config key, used in error messages.
    """
    if isinstance(value, Fixed | Uniform | LogNormal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Fixed(float(value))
    if isinstance(value, dict):
        params = dict(value)
        kind = params.pop("kind", None)
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
        for part in filter(None, (p.strip() for p in inner.split(","))):
            key, eq, raw = part.partition("=")
            try:
                number = float(raw if eq else key)
            except ValueError:
                raise ConfigError(f"{name}: {part!r} in {value!r} is not a number") from None
            if eq:
                kwargs[key.strip()] = number
            else:
                args.append(number)
        return _build(name, kind, args, kwargs)
    raise ConfigError(f"{name}: expected a distribution, got {value!r}")


def _build(name: str, kind: Any, args: list[float], kwargs: dict[str, Any]) -> Distribution:
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(f"{name}: unknown distribution {kind!r}; {suggest(str(kind), _KINDS)}")
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"{name}: bad parameters for {kind}: {exc}") from None


def _check_non_negative(kind: str, **values: float) -> None:
    for key, number in values.items():
        if not (isinstance(number, int | float) and number >= 0):
            raise ConfigError(f"{kind}({key}={number!r}): must be a number >= 0")
