"""Typed, frozen configuration, built at the edge.

Only :meth:`Config.from_toml`, :meth:`Config.from_mapping` and :meth:`Config.from_env` read
files, mappings or ``os.environ``; the core receives finished objects. Every unknown key or
bad value raises :class:`~wanmock.server.errors.ConfigError` naming the key and the valid choices.

>>> Config().therouter.sync_deadline
100.0
>>> Config.from_mapping({"lifecycle": {"run_time": "fixed(60)"}}).lifecycle.run_time
Fixed(value=60.0)
"""

from __future__ import annotations

import dataclasses
import enum
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .distributions import Distribution, Uniform, parse_distribution
from .errors import ConfigError
from .faults import FaultRule, RateLimit
from .vocab import FailureKind, Operation, parse_enum, suggest

__all__ = [
    "Config",
    "FaultsConfig",
    "JournalConfig",
    "LatencyConfig",
    "LifecycleConfig",
    "QueueScope",
    "RateLimitConfig",
    "RunComfyConfig",
    "ServerConfig",
    "TheRouterConfig",
]

DAY = 86_400.0


class QueueScope(enum.StrEnum):
    """Who shares a FIFO queue and its concurrency slots."""

    ACCOUNT = "account"  #: one queue per (provider, API key), like a per-account concurrency cap
    PROVIDER = "provider"  #: one queue per provider shared by every key


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleConfig:
    """How jobs move through the queue and how they end."""

    #: Time a job runs once it has a slot. The providers document 30–180 s [TheRouter S-TR1].
    run_time: Distribution = Uniform(30.0, 180.0)
    #: Wait before a job may take a slot (upstream scheduling), on top of slot contention.
    #: INFERRED: every documented submit answer says "queued", so jobs start queued briefly.
    queue_delay: Distribution = Uniform(1.0, 3.0)
    #: Concurrent slots per queue. DashScope documents 2 concurrent tasks for Wan (INFERRED here).
    concurrency: int = 2
    queue_scope: QueueScope = QueueScope.ACCOUNT
    #: Probability that a job fails instead of succeeding (the kind is drawn from failure_kinds).
    failure_rate: float = 0.0
    failure_kinds: tuple[FailureKind, ...] = (FailureKind.INTERNAL, FailureKind.MODERATION)
    #: Probability that a job never leaves the queue (until it expires).
    stuck_rate: float = 0.0
    #: Other users' jobs already queued ahead of each new job; they drain one per
    #: ``backlog_drain`` seconds (positions in the hundreds: "congested").
    backlog: int = 0
    backlog_drain: float = 2.0
    #: A scenario (see ``X-Wanmock-Scenario``) applied to every job that does not name one.
    scenario: str = ""
    #: Expired jobs stay answerable as "expired" for this long, then are evicted (404).
    evict_after: float = DAY
    #: Hard cap on retained jobs; the oldest are evicted first when it is exceeded.
    max_jobs: int = 2_000_000

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"lifecycle.concurrency must be >= 1, got {self.concurrency}")
        for name in ("failure_rate", "stuck_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"lifecycle.{name} must be in [0, 1], got {value}")
        if not self.failure_kinds:
            raise ConfigError("lifecycle.failure_kinds must name at least one kind")
        if self.backlog < 0 or self.backlog_drain <= 0:
            raise ConfigError("lifecycle.backlog must be >= 0 and lifecycle.backlog_drain > 0")
        if self.evict_after < 0 or self.max_jobs < 1:
            raise ConfigError("lifecycle.evict_after must be >= 0 and lifecycle.max_jobs >= 1")


class SizeSyntax(enum.StrEnum):
    """Which ``size`` spellings TheRouter's fake accepts."""

    X = "x"  #: OpenAI style "1024x1024", as in TheRouter's guide (default)
    X_OR_STAR = "x-or-star"  #: also DashScope's "1024*1024"


@dataclass(frozen=True, slots=True, kw_only=True)
class TheRouterConfig:
    """Choices where TheRouter's docs are silent or disagree (see README, "Assumptions")."""

    #: ``expires_at - created_at``: 604800 s = 7 days, from the documented example.
    retention: float = 7 * DAY
    #: The edge deadline for synchronous (no ``async=true``) requests.
    sync_deadline: float = 100.0
    size_syntax: SizeSyntax = SizeSyntax.X
    #: Whether ``in_progress`` jobs may be cancelled (undocumented; upstream allows queued only).
    cancel_running: bool = False
    #: Reject body fields that the model page does not list (``quality``, ``negative_prompt``...).
    reject_unknown_fields: bool = True


class NotReadyStyle(enum.StrEnum):
    """What RunComfy's ``/result`` answers before completion."""

    STATE = "state"  #: 200 with the current status (documented)
    ERROR_400005 = "error-400005"  #: HTTP 400 ``error_code 400005`` (RunComfy's own test mock)


class FailedStatusWord(enum.StrEnum):
    """What RunComfy's ``/status`` says for a failed job."""

    FAILED = "failed"  #: RunComfy's mock, CLI and MCP client all treat "failed" as terminal
    COMPLETED = "completed"  #: only the documented words; ``/result`` then says "failed"


class AuthErrorStyle(enum.StrEnum):
    """How RunComfy answers a bad key."""

    #: Serverless doc's 401001 Unauthorized at HTTP 401; RunComfy's CLI treats 401/403 as auth.
    CODE_401001 = "401001"
    #: Model API doc's code 400004 UserAccountError, at HTTP 400 (the status is only inferred
    #: from the code's prefix).
    CODE_400004 = "400004"


class OutputField(enum.StrEnum):
    """Where RunComfy puts the image URL in ``output``."""

    IMAGE = "image"  #: ``output.image`` (documented generic result example)
    IMAGES = "images"  #: ``output.images`` (RunComfy's own mock)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunComfyConfig:
    """Choices where RunComfy's docs are silent or disagree (see README, "Assumptions")."""

    #: Result retention: undocumented. INFERRED from the upstream (DashScope) task validity.
    retention: float = DAY
    submit_status: int = 200
    result_before_done: NotReadyStyle = NotReadyStyle.STATE
    failed_status_word: FailedStatusWord = FailedStatusWord.FAILED
    auth_error: AuthErrorStyle = AuthErrorStyle.CODE_401001
    output_field: OutputField = OutputField.IMAGE
    #: Reject body fields that the input schema does not define.
    reject_unknown_fields: bool = True

    def __post_init__(self) -> None:
        if self.submit_status not in (200, 202):
            raise ConfigError(
                f"runcomfy.submit_status must be 200 (docs) or 202 (RunComfy's mock), "
                f"got {self.submit_status}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Process-level settings: where to listen, which clock, which keys."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: Simulated seconds per real second for the real clock.
    time_scale: float = 1.0
    #: ``fake``: time moves only through the admin API (``POST /__admin/clock/advance``).
    fake_clock: bool = False
    #: Seed for every random draw; ``None`` draws one at start-up (printed by the CLI).
    seed: int | None = None
    #: Accepted bearer keys; empty means any non-empty key is accepted.
    api_keys: frozenset[str] = frozenset()
    #: Bearer token for ``/__admin``; ``None`` means loopback clients only.
    admin_token: str | None = None
    max_body_bytes: int = 1 << 20
    #: Base URL written into polling/result/image URLs; ``None`` uses the request's own host.
    public_base_url: str | None = None
    #: Answer plain status polls on a raw-ASGI fast path (same bytes, same journal; off: every
    #: request goes through Starlette — for debugging or comparing).
    fast_path: bool = True
    #: While served, freeze what survives each full garbage collection (``web/gcpolicy.py``):
    #: collector pauses stay short however many jobs are held.
    gc_freeze: bool = True
    #: Connections served at once (idle keep-alive ones count); see ``web/connections.py``.
    max_connections: int = 1000
    #: Seconds an idle keep-alive connection is kept open.
    keep_alive_timeout: float = 30.0
    #: Seconds a client has to send a request's headers, then its body, and to take a stalled
    #: response; the connection is closed (with a 408 if a request was started) after that.
    read_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ConfigError(f"server.max_connections must be >= 1, got {self.max_connections}")
        for name in ("keep_alive_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"server.{name} must be > 0 seconds, got {getattr(self, name)}")
        if not self.time_scale > 0:
            raise ConfigError(f"server.time_scale must be > 0, got {self.time_scale}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"server.port must be in 0..65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"server.max_body_bytes must be >= 1024, got {self.max_body_bytes}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultsConfig:
    """Probabilistic HTTP faults: ``[[faults.rules]]`` tables, first match wins."""

    rules: tuple[FaultRule, ...] = ()
    #: How long the ``timeout`` fault holds a response (simulated seconds).
    timeout_delay: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyConfig:
    """Response delay per endpoint (simulated seconds); unset means none."""

    submit: Distribution | None = None
    status: Distribution | None = None
    result: Distribution | None = None
    cancel: Distribution | None = None
    content: Distribution | None = None
    download: Distribution | None = None

    def by_operation(self) -> dict[Operation, Distribution]:
        """The configured delays keyed by operation."""
        return {op: dist for op in Operation
                if (dist := getattr(self, op.value, None)) is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitConfig:
    """Per-key request budgets, e.g. ``submit = "10/60"``; unset means unlimited."""

    submit: RateLimit | None = None
    #: Every non-submit request (status, result, cancel, content).
    poll: RateLimit | None = None

    def limits(self) -> dict[str, RateLimit]:
        return {k: v for k, v in (("submit", self.submit), ("poll", self.poll)) if v}


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalConfig:
    """The record of what clients did (bounded)."""

    enabled: bool = True
    #: Most recent requests kept (a ring buffer).
    capacity: int = 10_000
    #: Per-job behaviour summaries kept (oldest forgotten first).
    max_jobs: int = 10_000

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.max_jobs < 1:
            raise ConfigError("journal.capacity and journal.max_jobs must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration of a wanmock server."""

    server: ServerConfig = field(default_factory=ServerConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    therouter: TheRouterConfig = field(default_factory=TheRouterConfig)
    runcomfy: RunComfyConfig = field(default_factory=RunComfyConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    #: The preset this configuration was built from (informational).
    preset: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: Config | None = None) -> Config:
        """Build from a nested mapping (a parsed TOML document); ``base`` supplies the rest.

        A top-level ``preset = "name"`` is applied first; the other keys override it.
        """
        base = base or cls()
        if "preset" in data:
            name = data["preset"]
            if not isinstance(name, str):
                raise ConfigError(f"preset: expected a preset name, got {name!r}")
            base = base.with_preset(name)
            data = {k: v for k, v in data.items() if k != "preset"}
        config: Config = _build(cls, data, "", base)
        return config

    @classmethod
    def from_toml(cls, path: str | Path, *, base: Config | None = None) -> Config:
        """Read a TOML file with ``[server]``, ``[lifecycle]``, ``[therouter]``, ``[runcomfy]``."""
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        return cls.from_mapping(data, base=base)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read ``WANMOCK_CONFIG`` (a TOML path), ``WANMOCK_SEED`` and ``WANMOCK_TIME_SCALE``."""
        env = os.environ if environ is None else environ
        config = cls.from_toml(env["WANMOCK_CONFIG"]) if env.get("WANMOCK_CONFIG") else cls()
        overrides: dict[str, Any] = {}
        for var, key, convert in (
            ("WANMOCK_SEED", "seed", int),
            ("WANMOCK_TIME_SCALE", "time_scale", float),
        ):
            if env.get(var):
                try:
                    overrides[key] = convert(env[var])
                except ValueError:
                    raise ConfigError(f"{var}={env[var]!r} is not a {convert.__name__}") from None
        return config.replace(server=overrides) if overrides else config

    def with_preset(self, name: str) -> Config:
        """This config with a named preset (see :mod:`wanmock.server.presets`) laid over the
        lifecycle, faults, latency and rate-limit sections, which it resets first."""
        from .presets import PRESETS

        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; {suggest(name, PRESETS)}")
        base = Config(server=self.server, therouter=self.therouter, runcomfy=self.runcomfy,
                      journal=self.journal, preset=name)
        return Config.from_mapping(PRESETS[name][1], base=base)

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys of some sections changed, checked like a TOML file."""
        return Config.from_mapping(sections, base=self)


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
