"""The per-app runtime: config, clock, engine, dialects and helpers shared by the handlers.

One :class:`Runtime` per app (no module-level state); tests reach it as ``app.state.wanmock``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from ..clock import Clock
from ..config import Config
from ..dialects import Dialect, Links
from ..engine import Engine
from ..errors import AuthError
from ..images import Renderer, UrlSigner
from ..lifecycle import JobView

__all__ = ["Runtime", "owner_of"]


def owner_of(api_key: str) -> str:
    """The opaque owner token of an API key (a short hash: keys are never stored)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Runtime:
    """Everything a request handler needs."""

    config: Config
    clock: Clock
    engine: Engine
    dialects: Mapping[str, Dialect]
    renderer: Renderer = field(default_factory=Renderer)
    signer: UrlSigner = field(init=False)

    def __post_init__(self) -> None:
        secret = random.Random(self.engine.seed).randbytes(32)
        self.signer = UrlSigner(secret)

    @property
    def seed(self) -> int:
        return self.engine.seed

    def authenticate(self, request: Request) -> str:
        """The caller's owner token, or :class:`AuthError` saying what is wrong with the header."""
        header = request.headers.get("authorization")
        if header is None:
            raise AuthError("missing Authorization header; send 'Authorization: Bearer <key>'")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthError("malformed Authorization header; expected 'Bearer <key>'")
        accepted = self.config.server.api_keys
        if accepted and key not in accepted:
            raise AuthError("invalid API key")
        return owner_of(key)

    def links(self, request: Request) -> Links:
        """URL builders for this request's host (or the configured public base URL)."""
        base = self.config.server.public_base_url or str(request.base_url)
        return Links(base.rstrip("/"), self.image_urls_for(base.rstrip("/")))

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
