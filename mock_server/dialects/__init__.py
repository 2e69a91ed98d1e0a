"""Provider dialects and their registry.

>>> registry = default_registry()
>>> registry.names()
['runcomfy', 'therouter']
>>> registry.get("therouters")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
wanmock.server.errors.ConfigError: unknown provider 'therouters'; did you mean 'therouter'? ...
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import ConfigError
from ..vocab import suggest
from .base import Dialect, Links, Operation, Reply, Route
from .runcomfy import RunComfy
from .therouter import TheRouter

__all__ = [
    "Dialect",
    "DialectRegistry",
    "Links",
    "Operation",
    "Reply",
    "Route",
    "RunComfy",
    "TheRouter",
    "default_registry",
]


class DialectRegistry:
    """Dialect classes by provider name; rejects duplicates, lists known names on a miss."""

    def __init__(self) -> None:
        self._dialects: dict[str, type[Dialect]] = {}

    def register(self, dialect: type[Dialect]) -> type[Dialect]:
        """Add a dialect class (usable as a decorator)."""
        if dialect.name in self._dialects:
            raise ConfigError(f"a dialect named {dialect.name!r} is already registered")
        self._dialects[dialect.name] = dialect
        return dialect

    def get(self, name: str) -> type[Dialect]:
        """The dialect class called ``name``."""
        try:
            return self._dialects[name]
        except KeyError:
            raise ConfigError(
                f"unknown provider {name!r}; {suggest(name, self._dialects)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._dialects)

    def __iter__(self) -> Iterator[type[Dialect]]:
        return iter(self._dialects[name] for name in self.names())


def default_registry() -> DialectRegistry:
    """A fresh registry holding both built-in providers."""
    registry = DialectRegistry()
    registry.register(TheRouter)
    registry.register(RunComfy)
    return registry
