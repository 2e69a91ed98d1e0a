"""Deterministic PNG artifacts and the signed URLs that serve them.

The picture depends only on (seed, prompt, width, height, index): two identical requests give the
same bytes, a different seed gives a different picture. URLs carry an expiry and an HMAC like a
pre-signed S3 URL, so an expired or tampered URL is refused the way S3 refuses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageOps

__all__ = ["ImageKey", "Renderer", "UrlSigner", "s3_error_xml"]


@dataclass(frozen=True, slots=True)
class ImageKey:
    """Everything that determines an image's pixels."""

    seed: int
    prompt: str
    width: int
    height: int
    index: int = 0


class Renderer:
    """Renders PNGs off the event loop and keeps recent ones within a byte budget.

    Drawing a 1440x1440 PNG takes tens of milliseconds of CPU; done on the event loop it would
    stall every other request (polls included) for that long. :meth:`render_async` draws in a
    small thread pool instead, and concurrent requests for the same image share one drawing.
    The cache is bounded by bytes, not by count, because image sizes differ by an order of
    magnitude. Thread-safe; usable from any event loop.
    """

    def __init__(self, *, cache_bytes: int = 32 << 20, workers: int = 2) -> None:
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._cache: OrderedDict[ImageKey, bytes] = OrderedDict()
        self._cached = 0
        self._pending: dict[ImageKey, Future[bytes]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wanmock-png")
        # Idle pool threads wait forever; let them go when the renderer (its app) is dropped.
        weakref.finalize(self, self._pool.shutdown, wait=False)

    @property
    def cached_bytes(self) -> int:
        """Bytes of PNG held in the cache now (never more than ``cache_bytes``)."""
        return self._cached

    def render(self, key: ImageKey) -> bytes:
        """The PNG for ``key``, blocking the calling thread (not for use on an event loop)."""
        found = self._lookup(key)
        return found if isinstance(found, bytes) else found.result()

    async def render_async(self, key: ImageKey) -> bytes:
        """The PNG for ``key``, drawn in a worker thread; the event loop keeps serving."""
        found = self._lookup(key)
        if isinstance(found, bytes):
            return found
        # shield: a waiter that goes away (client disconnected) must not cancel the drawing
        # the other waiters share.
        return await asyncio.shield(asyncio.wrap_future(found))

    def _lookup(self, key: ImageKey) -> bytes | Future[bytes]:
        """A cached PNG, or the future of its drawing (started here unless already running)."""
        with self._lock:
            png = self._cache.get(key)
            if png is not None:
                self._cache.move_to_end(key)
                return png
            future = self._pending.get(key)
            if future is None:
                future = self._pool.submit(self._produce, key)
                self._pending[key] = future
            return future

    def _produce(self, key: ImageKey) -> bytes:
        try:
            png = self._draw(key)
        except BaseException:
            with self._lock:
                del self._pending[key]
            raise
        with self._lock:
            del self._pending[key]
            if len(png) <= self.cache_bytes:
                self._cache[key] = png
                self._cached += len(png)
                while self._cached > self.cache_bytes:
                    _, old = self._cache.popitem(last=False)
                    self._cached -= len(old)
        return png

    @staticmethod
    def _draw(key: ImageKey) -> bytes:
        digest = hashlib.sha256(
            f"{key.seed}\x00{key.index}\x00{key.prompt}".encode()
        ).digest()
        dark = (digest[0] // 3, digest[1] // 3, digest[2] // 3)
        light = (128 + digest[3] // 2, 128 + digest[4] // 2, 128 + digest[5] // 2)
        gradient = Image.linear_gradient("L").rotate(digest[6] % 4 * 90)
        gradient = gradient.resize((key.width, key.height))
        image = ImageOps.colorize(gradient, black=dark, white=light)
        draw = ImageDraw.Draw(image)
        for i in range(4):  # a few discs so seeds are told apart at a glance
            b = digest[8 + 5 * i : 13 + 5 * i]
            r = (b[0] % 20 + 5) * min(key.width, key.height) // 100
            cx, cy = b[1] * key.width // 255, b[2] * key.height // 255
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(b[3], b[4], b[0]))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


class UrlSigner:
    """Signs artifact paths with an expiry, in the style of an S3 pre-signed URL.

    The key is the simulation state's secret (random, never derived from the seed) and the
    signature covers the state's *incarnation*, named in ``X-Amz-Credential``: a URL issued
    before a restart of an in-memory fake is refused saying so, and never serves a new job that
    happens to reuse an id."""

    def __init__(self, secret: bytes, *, incarnation: str = "") -> None:
        self._secret = secret
        self.incarnation = incarnation

    def query(self, path: str, *, issued: float, expires: float) -> str:
        """The query string (without ``?``) that authorises ``path`` until ``expires``."""
        date = _amz_date(issued)
        ttl = max(0, int(expires - int(issued)))
        return urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": f"wanmock/{self.incarnation}",
                "X-Amz-Date": date,
                "X-Amz-Expires": str(ttl),
                "X-Amz-Signature": self._sign(path, date, ttl),
            }
        )

    def check(self, path: str, params: dict[str, str], *, now: float) -> tuple[str, str] | None:
        """``None`` if the signature is valid and unexpired, else ``(S3 code, message)``."""
        try:
            date = params["X-Amz-Date"]
            raw_ttl = params["X-Amz-Expires"]
            signature = params["X-Amz-Signature"]
            if not (raw_ttl.isascii() and raw_ttl.isdigit() and len(raw_ttl) <= 12):
                raise ValueError(raw_ttl)
            ttl = int(raw_ttl)
            issued = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except (KeyError, ValueError):
            return ("AccessDenied", "Query-string authentication requires the X-Amz-Date, "
                    "X-Amz-Expires and X-Amz-Signature parameters")
        credential = params.get("X-Amz-Credential", "")
        if credential != f"wanmock/{self.incarnation}":
            return ("AccessDenied", "This URL was signed by another run of the fake (it "
                    "restarted since: in-memory jobs and their URLs do not survive a restart) "
                    "or by another server")
        expected = self._sign(path, date, ttl).encode()
        if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not "
                    "match the signature you provided.")
        if now >= issued + ttl:
            return ("AccessDenied", "Request has expired")
        return None

    def _sign(self, path: str, date: str, ttl: int) -> str:
        message = f"{self.incarnation}\n{path}\n{date}\n{ttl}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def s3_error_xml(code: str, message: str) -> bytes:
    """An error document shaped like S3's."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    ).encode()


def _amz_date(when: float) -> str:
    return datetime.fromtimestamp(int(when), UTC).strftime("%Y%m%dT%H%M%SZ")
