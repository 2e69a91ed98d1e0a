"""Provider dialects and their registry.

>>> registry = default_registry()
>>> registry.names()
['dashscope', 'runcomfy', 'therouter']
>>> registry.get("therouters")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
wanmock.server.errors.ConfigError: unknown provider 'therouters'; did you mean 'therouter'? ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .._loading import build
from ..config import SECTIONS, Config
from ..errors import ConfigError
from ..vocab import Operation, suggest
from .base import (
    ClientFacts,
    Contents,
    Dialect,
    Endpoint,
    Links,
    Listing,
    Reply,
    Results,
    Route,
    Stamped,
    SubmitInput,
    Synchronous,
    retry_after_header,
    unstamped,
)
from .dashscope import DashScope
from .runcomfy import RunComfy
from .therouter import TheRouter

__all__ = [
    "ClientFacts",
    "Contents",
    "DashScope",
    "Dialect",
    "DialectRegistry",
    "Endpoint",
    "Links",
    "Listing",
    "Operation",
    "Reply",
    "Results",
    "Route",
    "RunComfy",
    "Stamped",
    "SubmitInput",
    "Synchronous",
    "TheRouter",
    "default_registry",
    "retry_after_header",
    "unstamped",
]

#: Operations a route may name only if the dialect implements the matching protocol.
_NEEDS: Mapping[Operation, type[Any]] = {Operation.RESULT: Results, Operation.CONTENT: Contents,
                                       Operation.LIST: Listing}


class DialectRegistry:
    """Dialect classes by provider name; rejects duplicates, lists known names on a miss."""

    def __init__(self) -> None:
        self._dialects: dict[str, type[Dialect]] = {}

    def register(self, dialect: type[Dialect]) -> type[Dialect]:
        """Add a dialect class (usable as a decorator); checks it can serve its route table."""
        if dialect.name in self._dialects:
            raise ConfigError(f"a dialect named {dialect.name!r} is already registered")
        for route in dialect.routes:
            needed = _NEEDS.get(route.operation)
            if needed is not None and not issubclass(dialect, needed):
                raise ConfigError(
                    f"dialect {dialect.name!r} routes {route.method} {route.path} to "
                    f"{route.operation} but does not implement {needed.__name__}")
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

    def __contains__(self, name: object) -> bool:
        return name in self._dialects

    def build(self, config: Config) -> dict[str, Dialect]:
        """Every registered provider, configured from its section of ``config``.

        A section naming no registered provider is an error listing the known ones."""
        for name in config.providers:
            if name not in self._dialects:
                raise ConfigError(f"[{name}]: unknown section, neither wanmock's nor a "
                                  f"provider's; {suggest(name, [*SECTIONS, *self._dialects])}")
        return {name: cls(self.options(cls, config)) for name, cls in
                ((cls.name, cls) for cls in self)}

    @staticmethod
    def options(cls: type[Dialect], config: Config) -> Any:
        """The typed options of one provider from its config section (defaults if absent)."""
        return build(cls.Options, config.provider(cls.name), cls.name, cls.Options())


def default_registry() -> DialectRegistry:
    """A fresh registry holding every built-in provider."""
    registry = DialectRegistry()
    registry.register(TheRouter)
    registry.register(RunComfy)
    registry.register(DashScope)
    return registry
