"""Deterministic PNG artifacts and the signed URLs that serve them.

The picture depends only on (seed, prompt, width, height, index): two identical requests give the
same bytes, a different seed gives a different picture. URLs carry an expiry and an HMAC like a
pre-signed S3 URL, so an expired or tampered URL is refused the way S3 refuses it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import io
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
    """Renders PNGs, keeping the ``cache_size`` most recent in memory."""

    def __init__(self, *, cache_size: int = 32) -> None:
        self.render = functools.lru_cache(maxsize=cache_size)(self._render)

    async def render_async(self, key: ImageKey) -> bytes:
        """:meth:`render` in a worker thread: a large PNG takes tens of milliseconds, which
        must not stall every other request on the event loop."""
        return await asyncio.to_thread(self.render, key)

    @staticmethod
    def _render(key: ImageKey) -> bytes:
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
