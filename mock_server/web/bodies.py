"""Request and response bodies at the edge: reading within limits, strict JSON, encoding.

Whatever a client sends, the answer is a domain error naming the problem (rendered in the
provider's shape), never an exception escaping: bodies over the limit, not JSON, not UTF-8,
nested deeper than any real request, or holding text that is not Unicode (lone surrogates, which
JSON's ``\\ud800`` escapes can smuggle in) — the field is named.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..dialects import Reply
from ..errors import BodyTooLarge, InvalidRequest, MalformedBody, UnsupportedMediaType, Violation

__all__ = ["MAX_DEPTH", "decode_json", "encode_json", "encode_reply", "read_body"]

#: No provider's request nests deeper than 3 levels; 32 leaves room and stops the decoder's
#: recursion long before Python's limit.
MAX_DEPTH = 32

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_json(body: Any) -> bytes:
    """A response body as compact UTF-8 JSON (text that is not Unicode is escaped, never an
    error: answers may quote what a client sent)."""
    return _ENCODER.encode(body).encode("utf-8", "backslashreplace")


def encode_reply(reply: Reply) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body of a :class:`Reply`, as sent (a ``bytes`` body is sent as
    it is, with the content type its headers give)."""
    raw = reply.body
    body = b"" if raw is None else raw if isinstance(raw, bytes) else encode_json(raw)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in reply.headers.items()]
    names = {name for name, _ in headers}
    if b"content-length" not in names and not (reply.status < 200
                                                or reply.status in (204, 304)):
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
    if reply.body is not None and b"content-type" not in names:
        headers.append((b"content-type", b"application/json"))
    return reply.status, headers, body


async def read_body(receive: Callable[[], Awaitable[MutableMapping[str, Any]]], *, media: bytes,
                    declared: bytes, limit: int, encoding: bytes = b"") -> bytes:
    """The whole request body, or a domain error: wrong media type, a charset other than
    UTF-8, a Content-Encoding (compressed bodies are not read), over ``limit`` bytes.

    A client that disconnects mid-body raises :class:`ClientGone` (nothing to answer)."""
    kind, *params = (part.strip().lower() for part in media.split(b";"))
    if kind != b"application/json":
        got = repr(kind.decode("latin-1")[:60]) if kind else "none"
        raise UnsupportedMediaType(f"Content-Type must be application/json; got {got}")
    for param in params:
        name, _, value = param.partition(b"=")
        if name.strip() == b"charset" and value.strip(b' "') not in (b"utf-8", b"utf8"):
            raise UnsupportedMediaType(
                "Content-Type charset must be utf-8 (JSON is UTF-8, RFC 8259); got "
                f"{value.strip().decode('latin-1')[:40]!r}")
    coding = encoding.strip().lower()
    if coding and coding != b"identity":
        raise UnsupportedMediaType(
            f"Content-Encoding {coding.decode('latin-1')[:40]!r} is not accepted; send the JSON "
            "body uncompressed (no Content-Encoding header)")
    if declared.isdigit() and len(declared) < 16 and int(declared) > limit:
        raise BodyTooLarge(f"request body is {int(declared)} bytes; the limit is {limit}")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class ClientGone(Exception):
    """The client went away mid-request: a normal event, answered by nobody."""


def decode_json(raw: bytes) -> Any:
    """A request body parsed as strict JSON, or :class:`MalformedBody` /
    :class:`InvalidRequest` saying why not."""
    if not raw.strip():
        raise MalformedBody("request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"request body is not UTF-8 text (byte {exc.start})") from None
    if _nesting(text) > MAX_DEPTH:
        raise MalformedBody(f"request body nests arrays or objects more than {MAX_DEPTH} levels "
                            "deep; no request of this API does")
    try:
        value = _DECODER.decode(text)
    except ValueError as exc:
        raise MalformedBody(f"request body is not valid JSON: {exc}") from None
    if "\\u" in text or "\\U" in text:  # only an escape can make a lone surrogate
        bad = _surrogate_field(value, "")
        if bad is not None:
            where = bad or "body"
            raise InvalidRequest([Violation(bad or "body", "unicode", (
                f"{where} contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                "escape), which is not text; send valid Unicode"))])
    return value


def _nesting(text: str) -> int:
    """The deepest bracket nesting outside strings (cheap: only bodies with many brackets
    are scanned character by character)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _surrogate_field(value: Any, path: str) -> str | None:
    """The dotted path of the first string (or key) holding a lone surrogate, if any."""
    if isinstance(value, str):
        return path if _broken(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if _broken(key):
                return path or "body"
            found = _surrogate_field(item, child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_field(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _broken(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _integer(text: str) -> int | float:
    """An integer literal; one too long for Python to read (4300 digits) reads as infinity,
    which every range check then refuses naming the field."""
    if len(text) <= 1000:
        return int(text)
    return float("-inf") if text.startswith("-") else float("inf")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_integer)
