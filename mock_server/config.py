"""Typed, frozen configuration, built at the edge.

Only :meth:`Config.from_toml`, :meth:`Config.from_mapping` and :meth:`Config.from_env` read
files, mappings or ``os.environ``; the core receives finished objects. Every unknown key or
bad value raises :class:`~wanmock.server.errors.ConfigError` naming the key and the valid choices.

>>> Config.from_mapping({"therouter": {"sync_deadline": 30}}).provider("therouter")
mappingproxy({'sync_deadline': 30})
>>> Config.from_mapping({"lifecycle": {"run_time": "fixed(60)"}}).lifecycle.run_time
Fixed(value=60.0)
"""

from __future__ import annotations

import dataclasses
import enum
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._loading import build
from .distributions import Distribution, Uniform
from .errors import ConfigError
from .faults import FaultRule, RateLimit
from .vocab import FailureKind, Operation, suggest

__all__ = [
    "SECTIONS",
    "Config",
    "FaultsConfig",
    "JournalConfig",
    "LatencyConfig",
    "LifecycleConfig",
    "LimitsConfig",
    "QueueScope",
    "RateLimitConfig",
    "RetryAfterUnit",
    "ServerConfig",
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


class RetryAfterUnit(enum.StrEnum):
    """What a ``Retry-After`` header counts."""

    SIMULATED = "simulated"  #: simulated seconds, like every timestamp the fake sends
    REAL = "real"  #: real seconds (simulated / time scale), for clients that sleep for real


_STATE_SCHEMES = ("redis:", "rediss:", "unix:")


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
    #: Keep each job's rendered status answer until its phase or queue position can change
    #: (same bytes; off: render every poll — for debugging or comparing).
    memoise: bool = True
    #: Jobs whose status answer is kept (oldest out first; ~2 KB each).
    memo_entries: int = 16_384
    #: Bytes of rendered PNGs kept for repeated downloads (oldest out first).
    image_cache_bytes: int = 32 << 20
    #: While served, freeze what survives each full garbage collection (``web/gcpolicy.py``):
    #: shorter collector pauses with hundreds of thousands of jobs, but garbage that is alive at
    #: a freeze and later dies in a reference cycle is never freed. Off by default.
    gc_freeze: bool = False
    #: Where the simulation state lives: ``memory`` (this process) or ``redis://host:port/db``
    #: (``rediss://``, ``unix:///path.sock?db=0``): shared by every worker and host using it.
    state: str = "memory"
    #: Redis key prefix separating simulations that share one Redis (``wm:{namespace}:…``).
    namespace: str = "wanmock"
    #: Worker processes on this host (several need ``state = "redis://…"``).
    workers: int = 1
    #: Key signing artifact URLs; ``None``: random per run (never derived from the seed).
    signing_key: str | None = None
    #: ``simulated``: ``Retry-After`` in simulated seconds (consistent with every timestamp);
    #: ``real``: divided by the time scale, for clients that really sleep that long.
    retry_after: RetryAfterUnit = RetryAfterUnit.SIMULATED
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
        if self.state != "memory" and not self.state.startswith(_STATE_SCHEMES):
            raise ConfigError(f"server.state must be 'memory' or a Redis URL "
                              f"({', '.join(s + '//…' for s in _STATE_SCHEMES)}); got "
                              f"{self.state!r}")
        if self.workers < 1:
            raise ConfigError(f"server.workers must be >= 1, got {self.workers}")
        if self.memo_entries < 1 or self.image_cache_bytes < 0:
            raise ConfigError(f"server.memo_entries must be >= 1 and server.image_cache_bytes "
                              f">= 0; got {self.memo_entries} and {self.image_cache_bytes}")
        if self.workers > 1 and self.state == "memory":
            raise ConfigError("server.workers > 1 needs shared state: every worker would be a "
                              "separate fake; add state = \"redis://HOST:PORT/DB\" "
                              "(or --state redis://…)")
        if not self.namespace or not all(c.isalnum() or c in "-_." for c in self.namespace):
            raise ConfigError(f"server.namespace must be letters, digits, '-', '_' or '.'; got "
                              f"{self.namespace!r}")


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
class LimitsConfig:
    """What the fake keeps, whatever clients send (memory stays bounded)."""

    #: Longest prompt a job keeps, in characters: a longer one is refused naming the field,
    #: unless the provider documents truncation (DashScope: 800). No provider documents more
    #: than 800; 8000 leaves room for clients that send long ones on purpose.
    prompt_chars: int = 8_000
    #: Bytes of submitted bodies (prompt included) kept per API key over its live jobs; a
    #: submit past it answers 429 until old jobs are evicted.
    key_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        if self.prompt_chars < 1 or self.key_bytes < 1024:
            raise ConfigError("limits.prompt_chars must be >= 1 and limits.key_bytes >= 1024")


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalConfig:
    """The record of what clients did (bounded)."""

    enabled: bool = True
    #: Most recent requests kept (a ring buffer).
    capacity: int = 10_000
    #: Per-job behaviour summaries kept (oldest forgotten first; verdicts that need an
    #: evicted one fail saying so).
    max_jobs: int = 10_000
    #: Per-key behaviour summaries kept (the same rule).
    max_keys: int = 100_000

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.max_jobs < 1 or self.max_keys < 1:
            raise ConfigError("journal.capacity, journal.max_jobs and journal.max_keys must be "
                              ">= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration of a wanmock server."""

    server: ServerConfig = field(default_factory=ServerConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    #: Each provider's section (``[therouter]``, ``[runcomfy]``, …) as written: the provider's
    #: module turns it into its typed options when the app is built, and rejects unknown keys
    #: there; a section naming no registered provider is refused with the known names.
    providers: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}))
    #: The preset this configuration was built from (informational).
    preset: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: Config | None = None) -> Config:
        """Build from a nested mapping (a parsed TOML document); ``base`` supplies the rest.

        A top-level ``preset = "name"`` is applied first; the other keys override it. A table
        that is not a core section is a provider's section (checked when the app is built).
        """
        base = base or cls()
        if "preset" in data:
            name = data["preset"]
            if not isinstance(name, str):
                raise ConfigError(f"preset: expected a preset name, got {name!r}")
            base = base.with_preset(name)
            data = {k: v for k, v in data.items() if k != "preset"}
        core = {k: v for k, v in data.items() if k.replace("-", "_") in _CORE}
        providers = dict(base.providers)
        for name, section in data.items():
            if name.replace("-", "_") in _CORE:
                continue
            if name == "providers" or not isinstance(section, Mapping):
                raise ConfigError(f"{name}: unknown key; core sections: {', '.join(SECTIONS)}"
                                  f"; a provider's settings go in a [provider-name] table")
            providers[name] = MappingProxyType({**providers.get(name, {}), **section})
        config: Config = build(cls, core, "", base)
        if providers != dict(base.providers):
            config = dataclasses.replace(config, providers=MappingProxyType(providers))
        return config

    def provider(self, name: str) -> Mapping[str, Any]:
        """The settings written for one provider (empty: its defaults)."""
        return self.providers.get(name, MappingProxyType({}))

    @classmethod
    def from_toml(cls, path: str | Path, *, base: Config | None = None) -> Config:
        """Read a TOML file: ``[server]``, ``[lifecycle]``, …, and a table per provider."""
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
        base = Config(server=self.server, providers=self.providers, journal=self.journal,
                      limits=self.limits, preset=name)
        return Config.from_mapping(PRESETS[name][1], base=base)

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys of some sections changed, checked like a TOML file."""
        return Config.from_mapping(sections, base=self)




#: The sections every wanmock config has (anything else is a provider's).
SECTIONS = ("server", "lifecycle", "faults", "latency", "rate_limit", "journal", "limits")
_CORE = frozenset(SECTIONS)
