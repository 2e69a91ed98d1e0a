"""Raw-socket clients that misbehave on purpose, for the hostile tests."""

from __future__ import annotations

import socket
import time

HEALTH = b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
RUNCOMFY = "/v1/models/wan-ai/wan-2-2/flash/text-to-image"


def address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host.strip("[]"), int(port)


def connect(url: str, *, receive_buffer: int | None = None) -> socket.socket:
    """A blocking TCP connection to the server at ``url`` (5 s timeout on each call)."""
    sock = socket.socket(socket.AF_INET6 if url.startswith("http://[") else socket.AF_INET)
    if receive_buffer is not None:  # before connect, so the window starts small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect(address(url))
    return sock


class Responses:
    """Whole responses read off a socket one by one (each with a ``content-length``, as the
    fake always sends), keeping what arrived of the next."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response: {self.buffer[:80]!r}")
        self.buffer += chunk

    def next(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self._more()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]


def read_response(sock: socket.socket) -> bytes:
    """One whole response, on a socket that has no other response coming."""
    return Responses(sock).next()


def wait_closed(sock: socket.socket, within: float) -> tuple[bytes, float | None]:
    """Read until the server closes (or resets) the connection: what arrived, and after how many
    seconds; ``None`` if it was still open after ``within`` seconds."""
    start = time.monotonic()
    got = b""
    while True:
        remaining = start + within - time.monotonic()
        if remaining <= 0:
            return got, None
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return got, None
        except ConnectionResetError:
            return got, time.monotonic() - start
        if not chunk:
            return got, time.monotonic() - start
        got += chunk


def flood_without_reading(sock: socket.socket, request: bytes, *, until: float) -> float | None:
    """Pipeline ``request`` over and over and never read the answers, until the server drops
    the connection (returns the seconds it took) or ``until`` (a ``time.monotonic()``) passes
    (returns ``None``). Sends wait at most 50 ms, so a full socket buffer is no hang."""
    start = time.monotonic()
    batch = request * max(1, 16384 // len(request))
    pending = b""
    sock.settimeout(0.05)
    while time.monotonic() < until:
        if not pending:
            pending = batch
        try:
            pending = pending[sock.send(pending):]
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
    return None


def fill_without_reading(sock: socket.socket, request: bytes, *, seconds: float = 0.5) -> None:
    """Pipeline ``request`` until the connection stops taking bytes (or ``seconds`` pass)."""
    flood_without_reading(sock, request, until=time.monotonic() + seconds)
