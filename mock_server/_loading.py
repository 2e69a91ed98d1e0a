"""The one reflective loader behind every config object: tables into frozen dataclasses.

A TOML table (or any mapping) becomes a dataclass by its field types: nested dataclasses,
``X | None``, tuples, frozensets, enums (with "did you mean"), distributions, rate budgets, and
plain scalars. Every error names the key (``lifecycle.run_time: …``). Provider option classes
in ``dialects/`` are loaded by the same function.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any

from .distributions import Distribution, parse_distribution
from .errors import ConfigError
from .faults import RateLimit
from .vocab import parse_enum, suggest

__all__ = ["build"]


def build(cls: type[Any], data: Mapping[str, Any], path: str, base: Any = None) -> Any:
    """``cls`` from a table at ``path`` (``""``: the top level): merged into ``base`` when there
    is one (a section), constructed from scratch when there is none (a list item)."""
    return _build(cls, data, path, base)


def _build(cls: type[Any], data: Mapping[str, Any], path: str, base: Any = None) -> Any:
    """``cls`` from a table at ``path``: merged into ``base`` when there is one (a section),
    constructed from scratch when there is none (a list item)."""
    where = path or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a table, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for key, value in data.items():
        key_name = key.replace("-", "_")
        if key_name not in names:
            raise ConfigError(f"{where}: unknown key {key!r}; {suggest(key_name, names)}")
        hint = hints[key_name]
        child = f"{path}.{key_name}" if path else key_name
        if base is not None and dataclasses.is_dataclass(hint) and isinstance(hint, type):
            changes[key_name] = _build(hint, value, child, getattr(base, key_name))
        else:
            changes[key_name] = _convert(hint, value, child)
    try:
        return dataclasses.replace(base, **changes) if base is not None else cls(**changes)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path)
    if hint is Distribution:
        return parse_distribution(value, name=path)
    if hint is RateLimit:
        if isinstance(value, RateLimit):
            return value
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a budget like '20/60', got {value!r}")
        return RateLimit.parse(value, name=path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = [a for a in args if a is not Ellipsis]
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        return _build(hint, value, path)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return parse_enum(hint, value if isinstance(value, str) else str(value), name=path)
    if origin is frozenset:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part]
        if not isinstance(value, list | tuple | set | frozenset) or not all(
            isinstance(v, str) for v in value
        ):
            raise ConfigError(f"{path}: expected a list of strings, got {value!r}")
        return frozenset(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported setting type {hint!r}")  # pragma: no cover
