"""The per-app runtime: configuration, the simulation state, dialects, engine and helpers.

One :class:`Runtime` per app (no module-level state); tests reach it as ``app.state.wanmock``.
It holds no simulation state of its own — that is all in :attr:`Runtime.state` — only
configuration and caches of pure functions (owner hashes, link builders).
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..clock import Clock
from ..config import Config, RetryAfterUnit
from ..dialects import Dialect, Links
from ..engine import Engine
from ..errors import ConfigError, InvalidRequest
from ..faults import FaultRules
from ..images import Renderer, UrlSigner
from ..journal import Journal
from ..lifecycle import JobView
from ..scenarios import parse_scenario
from ..state import MemoryState, SimState
from .memo import Memo

__all__ = ["Runtime", "bearer_key", "owner_of", "valid_host"]

#: A Host header worth writing into URLs: a DNS name or IPv4 address, or [IPv6], and a port.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?\Z")


def owner_of(api_key: str) -> str:
    """The opaque owner token of an API key (a short hash: keys are never stored).

    Interned: every job of a key shares one string."""
    return sys.intern(hashlib.sha256(api_key.encode()).hexdigest()[:16])


def bearer_key(header: str) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` value, or ``None`` if malformed (no key,
    or one with a space or a comma inside: two Authorization headers arrive joined by ", ")."""
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or "," in key or " " in key:
        return None
    return key


def valid_host(host: str | None) -> bool:
    """Whether a ``Host`` header is a plain host[:port] (never written into URLs otherwise)."""
    return bool(host) and len(host) <= 255 and _HOST.match(host) is not None  # type: ignore[arg-type]


def _check_scenario(config: Config) -> None:
    if config.lifecycle.scenario:
        try:
            parse_scenario(config.lifecycle.scenario)
        except InvalidRequest as exc:
            raise ConfigError(f"lifecycle.scenario: {exc.message}") from None


def _rules(config: Config) -> FaultRules:
    return FaultRules(
        rules=config.faults.rules,
        latency=config.latency.by_operation(),
        rate_limits=config.rate_limit.limits(),
        timeout_delay=config.faults.timeout_delay,
    )


@dataclass(slots=True)
class Runtime:
    """Everything a request needs."""

    config: Config
    state: SimState
    dialects: Mapping[str, Dialect]
    renderer: Renderer = field(init=False)
    signer: UrlSigner = field(init=False)
    rules: FaultRules = field(init=False)
    engine: Engine = field(init=False)
    #: The configuration as built, before any preset switched at runtime.
    base: Config = field(init=False)
    memo: Memo = field(init=False)
    #: Small caches of pure functions of a request: owner token by key, links by base URL.
    _owners: dict[str, str] = field(init=False, default_factory=dict)
    _links: dict[str, Links] = field(init=False, default_factory=dict)
    #: The state lives in this process only: no other worker can switch its preset.
    local: bool = field(init=False, default=False)
    #: Provider requests this process has received and journaled (the edge journals an answer
    #: after sending it), and waits on the clock begun and ended (a sync-mode wait, an
    #: injected delay): counters that only grow, bookkeeping of this process's requests (not
    #: simulation state), read from other threads by :attr:`settled`.
    arrived: int = field(init=False, default=0)
    journaled: int = field(init=False, default=0)
    parks: int = field(init=False, default=0)
    unparks: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.local = isinstance(self.state, MemoryState)
        _check_scenario(self.config)
        identity = self.state.identity
        self.signer = UrlSigner(identity.secret, incarnation=identity.incarnation)
        self.rules = _rules(self.config)
        self.engine = Engine(self.state)
        self.base = self.config
        server = self.config.server
        self.memo = Memo(enabled=server.memoise, capacity=server.memo_entries)
        self.renderer = Renderer(cache_bytes=server.image_cache_bytes)

    @property
    def clock(self) -> Clock:
        return self.state.clock

    @property
    def settled(self) -> bool:
        """Every provider request received so far is journaled or waiting on the clock: a
        client that has its answer finds its request in the journal.

        Safe from another thread while the server's loop moves the counters: read in this
        order, they bound the requests not journaled from above and those parked from below
        over the whole read, so ``True`` held at every instant of it."""
        journaled, parks = self.journaled, self.parks
        return self.arrived - journaled <= parks - self.unparks

    async def park(self, deadline: float) -> None:
        """Wait on the clock until ``deadline``, counted for :attr:`settled`."""
        self.parks += 1
        try:
            await self.state.clock.sleep_until(deadline)
        finally:
            self.unparks += 1

    @property
    def journal(self) -> Journal:
        """The journal of an in-process (memory) state, for tests and in-process judging; a
        shared state's is read with ``await rt.state.journal()``."""
        kept = getattr(self.state, "log", None)
        if not isinstance(kept, Journal):
            raise TypeError("the journal of a shared state is read with "
                            "'await rt.state.journal()'")
        return kept

    def use_preset(self, name: str) -> Config:
        """Switch to a preset for every job submitted from now on (jobs in flight keep theirs);
        ``""`` goes back to the configuration the server started with."""
        config = self.base if not name else self.base.with_preset(name)
        _check_scenario(config)
        self.config = config
        self.rules = _rules(config)
        return config

    async def sync_preset(self) -> None:
        """Follow a preset switched through another worker sharing the state (an in-process
        state has no other worker: its preset is switched through this runtime)."""
        if self.local:
            return
        name = await self.state.preset()
        if name != self.config.preset:
            self.use_preset(name)

    def retry_after(self, seconds: float) -> float:
        """A ``Retry-After`` in the unit the server sends (simulated or real seconds)."""
        server = self.config.server
        if server.retry_after is RetryAfterUnit.REAL and not server.fake_clock:
            return seconds / server.time_scale
        return seconds

    def owner(self, api_key: str) -> str:
        """:func:`owner_of`, remembered for the last few thousand keys of ordinary length (in
        process memory only: records and the journal carry the hash, never the key)."""
        owner = self._owners.get(api_key)
        if owner is None:
            owner = owner_of(api_key)
            if len(api_key) <= 256:
                if len(self._owners) >= 4096:
                    self._owners.clear()
                self._owners[api_key] = owner
        return owner

    def accepts(self, key: str) -> bool:
        """Whether ``server.api_keys`` lets this bearer key in (empty: any key)."""
        accepted = self.config.server.api_keys
        return not accepted or key in accepted

    def base_for(self, scheme: str, host: str | None, server: tuple[str, int] | None,
                 root_path: str = "") -> str:
        """The base URL written into answers: the configured public one, else the request's
        own — its ``Host`` header if well formed, else the address it reached."""
        public = self.config.server.public_base_url
        if public:
            return public
        if not valid_host(host):
            address, port = server or ("127.0.0.1", 80)
            host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        return f"{scheme}://{host}{root_path}"

    def links_for(self, base: str) -> Links:
        """URL builders under ``base`` (remembered for the last few hundred hosts)."""
        links = self._links.get(base)
        if links is None:
            if len(self._links) >= 256:
                self._links.clear()
            root = base.rstrip("/")
            links = self._links[base] = Links(root, self.image_urls_for(root))
        return links

    def image_urls_for(self, base: str) -> Callable[[JobView], list[str]]:
        """A function giving a succeeded job's signed image URLs under ``base``."""
        signer = self.signer

        def image_urls(view: JobView) -> list[str]:
            record = view.record
            urls = []
            for index in range(record.images):
                path = f"/files/{record.provider}/{record.id}/{index}.png"
                query = signer.query(path, issued=record.end_at, expires=record.expires_at)
                urls.append(f"{base}{path}?{query}")
            return urls

        return image_urls
