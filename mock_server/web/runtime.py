"""The per-app runtime: config, clock, engine, faults, journal and dialects.

One :class:`Runtime` per app (no module-level state); tests reach it as ``app.state.wanmock``.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.types import Scope

from ..clock import Clock
from ..config import Config
from ..dialects import Dialect, Links
from ..engine import Engine
from ..errors import AuthError, ConfigError, InvalidRequest
from ..faults import FaultInjector
from ..images import Renderer, UrlSigner
from ..journal import Journal
from ..lifecycle import JobView
from ..scenarios import parse_scenario

__all__ = ["Runtime", "base_url", "bearer_key", "owner_of"]


def owner_of(api_key: str) -> str:
    """The opaque owner token of an API key (a short hash: keys are never stored).

    Interned: every job of a key shares one string."""
    return sys.intern(hashlib.sha256(api_key.encode()).hexdigest()[:16])


def bearer_key(header: str) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` value, or ``None`` if malformed."""
    scheme, _, key = header.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def base_url(scope: Scope, host: str | None) -> str:
    """``scheme://host[:port]/root_path`` of a request (cheaper than ``request.base_url``)."""
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


def _check_scenario(config: Config) -> None:
    if config.lifecycle.scenario:
        try:
            parse_scenario(config.lifecycle.scenario)
        except InvalidRequest as exc:
            raise ConfigError(f"lifecycle.scenario: {exc.message}") from None


def _faults(config: Config, seed: int) -> FaultInjector:
    return FaultInjector(
        rules=config.faults.rules,
        latency=config.latency.by_operation(),
        rate_limits=config.rate_limit.limits(),
        timeout_delay=config.faults.timeout_delay,
        seed=seed,
    )


@dataclass(slots=True)
class Runtime:
    """Everything a request handler needs."""

    config: Config
    clock: Clock
    engine: Engine
    dialects: Mapping[str, Dialect]
    renderer: Renderer = field(default_factory=Renderer)
    signer: UrlSigner = field(init=False)
    faults: FaultInjector = field(init=False)
    journal: Journal = field(init=False)
    #: Small caches of pure functions of a request: owner token by key, links by base URL.
    _owners: dict[str, str] = field(init=False, default_factory=dict)
    _links: dict[str, Links] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        _check_scenario(self.config)
        self.signer = UrlSigner(random.Random(self.engine.seed).randbytes(32))
        self.faults = _faults(self.config, self.engine.seed)
        self.journal = Journal(capacity=self.config.journal.capacity,
                               max_jobs=self.config.journal.max_jobs)

    @property
    def seed(self) -> int:
        return self.engine.seed

    def use_preset(self, name: str) -> Config:
        """Switch to a preset for every job submitted from now on (jobs in flight keep theirs)."""
        _check_scenario(config := self.config.with_preset(name))
        self.config = config
        self.engine.lifecycle = self.config.lifecycle
        self.faults = _faults(self.config, self.engine.seed)
        return self.config

    def reset(self) -> None:
        """Forget every job, journal entry, script and rate-limit window; reseed the RNGs."""
        self.engine.reset()
        self.faults = _faults(self.config, self.engine.seed)
        self.journal.reset()

    @staticmethod
    def owner_of_key(api_key: str) -> str:
        """The owner token jobs submitted with ``api_key`` carry."""
        return owner_of(api_key)

    def owner_or_none(self, request: Request) -> str | None:
        """The owner token of a well-formed bearer header, without judging the key.

        Computed once per request and kept in its state (the journal reads it there too)."""
        state = request.scope.setdefault("state", {})
        if "owner" not in state:
            key = bearer_key(request.headers.get("authorization", ""))
            state["owner"] = self.owner(key) if key else None
        owner: str | None = state["owner"]
        return owner

    def authenticate(self, request: Request) -> str:
        """The caller's owner token, or :class:`AuthError` saying what is wrong with the header."""
        header = request.headers.get("authorization")
        if header is None:
            raise AuthError("missing Authorization header; send 'Authorization: Bearer <key>'")
        key = bearer_key(header)
        if key is None:
            raise AuthError("malformed Authorization header; expected 'Bearer <key>'")
        if not self.accepts(key):
            raise AuthError("invalid API key")
        owner = self.owner_or_none(request)
        assert owner is not None  # the header is well formed
        return owner

    def owner(self, api_key: str) -> str:
        """:func:`owner_of`, remembered for the last few thousand keys (in process memory only:
        records and the journal carry the hash, never the key)."""
        owner = self._owners.get(api_key)
        if owner is None:
            if len(self._owners) >= 4096:
                self._owners.clear()
            owner = self._owners[api_key] = owner_of(api_key)
        return owner

    def accepts(self, key: str) -> bool:
        """Whether ``server.api_keys`` lets this bearer key in (empty: any key)."""
        accepted = self.config.server.api_keys
        return not accepted or key in accepted

    def base_for(self, scope: Scope, host: str | None) -> str:
        """The base URL written into answers: the configured public one, else the request's."""
        return self.config.server.public_base_url or base_url(scope, host)

    def links(self, request: Request) -> Links:
        """URL builders for this request's host (or the configured public base URL)."""
        return self.links_for(self.base_for(request.scope, request.headers.get("host")))

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
            for index in range(record.request.n):
                path = f"/files/{record.provider}/{record.id}/{index}.png"
                query = signer.query(path, issued=record.end_at, expires=record.expires_at)
                urls.append(f"{base}{path}?{query}")
            return urls

        return image_urls
