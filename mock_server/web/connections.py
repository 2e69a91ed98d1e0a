"""What a client may hold on a socket: connection limits and timeouts, for uvicorn and granian.

A fake pointed at by CI fleets must not be held hostage by one misbehaving client: an idle pool,
a client that sends its headers a byte at a time (slowloris), a body that never ends, a pipelining
client that never reads its answers. :class:`ConnectionLimits` names every bound; the servers in
:mod:`~wanmock.server.web.serve` apply it with their own settings where they have one:

========================  ==========================  ===========================================
limit                     uvicorn                     granian (hyper)
========================  ==========================  ===========================================
``max_connections``       ``limit_concurrency`` (503  ``backpressure`` (the rest wait, unaccepted,
                          beyond it)                  in the listen backlog)
``backlog``               ``backlog``                 ``backlog``
``keep_alive_timeout``    ``timeout_keep_alive``      ``http1_settings.header_read_timeout``
``header_timeout``        :class:`GuardedHttpTools`   ``header_read_timeout`` (one hyper timer
                                                      for idle *and* head: the larger of the two)
``body_timeout``          :class:`GuardedHttpTools`   :class:`BodyDeadline` (an ASGI wrapper)
``write_timeout``         :class:`GuardedHttpTools`   none (hyper stops reading instead)
``max_head_bytes``        :class:`GuardedHttpTools`   ``http1_settings.max_buffer_size``
pipelining                :class:`GuardedHttpTools`   hyper: one request at a time
========================  ==========================  ===========================================
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import ServerConfig
from ..errors import ConfigError

__all__ = ["BodyDeadline", "ConnectionLimits", "GuardedHttpTools", "guarded_protocol"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """Every bound a client meets on a socket. Times in seconds; defaults suit a CI fleet of
    hundreds of pollers on loopback (``[server]`` sets the first three, see :meth:`from_config`).
    """

    #: Open connections served at once; idle keep-alive connections count.
    max_connections: int = 1000
    #: Connections the kernel queues before they are accepted (capped by ``net.core.somaxconn``).
    backlog: int = 2048
    #: An idle keep-alive connection is closed after this long without a new request. Longer
    #: than the 5 s for which httpx keeps an idle connection, so the server is not the one that
    #: closes a connection a client is about to reuse.
    keep_alive_timeout: float = 30.0
    #: A request's line and headers must arrive within this long of their first byte, and a new
    #: connection must send its first byte within it.
    header_timeout: float = 10.0
    #: A request's body must arrive within this long of its headers.
    body_timeout: float = 10.0
    #: A response the client does not read (its socket buffers are full) is dropped after this.
    write_timeout: float = 10.0
    #: A request line and headers larger than this are refused with 431.
    max_head_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in ("keep_alive_timeout", "header_timeout", "body_timeout", "write_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.max_connections < 1 or self.backlog < 1:
            raise ConfigError("max_connections and backlog must be >= 1")
        if self.max_head_bytes < 8192:
            raise ConfigError(f"max_head_bytes must be >= 8192, got {self.max_head_bytes}")

    @classmethod
    def from_config(cls, server: ServerConfig) -> ConnectionLimits:
        """The limits ``[server]`` sets: ``max_connections``, ``keep_alive_timeout`` and
        ``read_timeout`` (the head, body and write timeouts)."""
        t = server.read_timeout
        return cls(max_connections=server.max_connections,
                   keep_alive_timeout=server.keep_alive_timeout,
                   header_timeout=t, body_timeout=t, write_timeout=t)

    def granian_options(self) -> dict[str, Any]:
        """Keyword arguments for granian's ``Server`` (embedded or not)."""
        from granian.constants import HTTPModes
        from granian.http import HTTP1Settings

        # hyper has one timer for "waiting for a request head", idle or not: the larger value
        # keeps idle pools open as long as under uvicorn, at the cost of slow heads held longer.
        head_ms = int(1000 * max(self.keep_alive_timeout, self.header_timeout))
        return {
            "backlog": self.backlog,
            "backpressure": self.max_connections,
            # HTTP/2 (h2c) idle connections have no timeout in granian; no provider client
            # speaks h2c to a cleartext fake, so serve HTTP/1.1 only.
            "http": HTTPModes.http1,
            "http1_settings": HTTP1Settings(header_read_timeout=head_ms, keep_alive=True,
                                            max_buffer_size=self.max_head_bytes),
        }


class BodyDeadline:
    """ASGI wrapper: the app's wait for the request body ends ``timeout`` seconds after the
    request started, with a ``408`` (``Connection: close``) if nothing was answered yet and an
    ``http.disconnect`` for the app, whose later messages are dropped.

    For granian, which has no body timeout of its own (uvicorn's is in
    :class:`GuardedHttpTools`, on the socket, where it also covers bodies the app never reads).
    Only a receive *before* the body is complete is timed: one that waits for a disconnect
    afterwards is passed through.
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout
        body_done = timed_out = started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out, started
            if body_done:
                return await receive()
            if timed_out:
                return {"type": "http.disconnect"}
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                if not started:
                    started = True
                    await _send_plain(send, 408, f"request body not received within "
                                                 f"{self.timeout:g} s")
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, timed_receive, tracked_send)


async def _send_plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _plain_response(status: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class _Phase(enum.Enum):
    IDLE = "idle"  #: between requests (or before the first): no byte of a request yet
    HEAD = "head"  #: reading a request line and headers
    BODY = "body"  #: reading a request body


class _GuardedFlow(FlowControl):
    """uvicorn's flow control, plus: reading resumes only once the connection has nothing
    queued, and a write stalled longer than ``write_timeout`` drops the connection."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpTools) -> None:
        super().__init__(transport)
        self._protocol = protocol
        self._write_timer: asyncio.TimerHandle | None = None

    def resume_reading(self) -> None:
        if not self._protocol.holding_back():
            super().resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self._protocol.loop.call_later(
                self._protocol.limits.write_timeout, self._transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.cancel_timer()

    def cancel_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds uvicorn has no setting for.

    uvicorn (0.30-0.54) has a keep-alive timeout but no header or body timeout (a slowloris
    socket, a body that never ends, or ``GET /x\\r\\n`` is held for ever), no bound on the
    request head (httptools accumulates headers without limit), and reads pipelined requests
    without bound from a client that never reads its answers: every finished response resumes
    reading, and each read of up to 256 KiB is parsed at once into queued request cycles
    (4 such connections took a server from 77 to 437 MB in 15 s). This subclass adds, per
    connection:

    * one timer for the request being read: ``header_timeout`` for its head (and for the first
      byte on a new connection), then ``body_timeout`` for its body. On expiry a partial request
      gets a plain ``408`` and the connection is closed; an idle new connection is just closed.
      Time the server itself holds the request back (reading paused) does not count.
    * flow control for pipelining: bytes are parsed in 4 KiB slices, and once a request is
      queued behind the one being answered the rest of the read is kept unparsed and reading
      stops until the queue is empty. A client that never reads costs at most one read buffer
      and the requests of one slice.
    * ``write_timeout`` on a stalled write, ``max_head_bytes`` on the head (431), and an answer
      to a client that half-closes after a complete request (uvicorn would close at once and
      drop the answer if it was not ready yet).

    Limits come from the class attribute ``limits`` (see :func:`guarded_protocol`).
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    SLICE: ClassVar[int] = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keep_alive_timeout  # type: ignore[assignment]
        self._unparsed = b""
        self._phase = _Phase.IDLE
        self._head_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._eof = False
        self._too_large = False

    # -- what the flow control asks
    def holding_back(self) -> bool:
        """Whether reading must stay paused: bytes wait unparsed or a request waits its turn."""
        return bool(self._unparsed or self.pipeline)

    def _busy(self) -> bool:
        cycle = self.cycle
        return self.holding_back() or (cycle is not None and not cycle.response_complete)

    # -- connection events
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _GuardedFlow(transport, self)
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if isinstance(self.flow, _GuardedFlow):
            self.flow.cancel_timer()
        self._unparsed = b""
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        # The client half-closed: answer what it sent, then close. Returning True keeps the
        # transport open for writing.
        self._eof = True
        return True if self._phase is _Phase.IDLE and self._busy() else None

    def data_received(self, data: bytes) -> None:
        if self._unparsed:  # reading was paused; keep the byte order
            self._unparsed += data
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        limit = self.limits.max_head_bytes
        for start in range(0, len(data), self.SLICE):
            if self.pipeline or self.transport.is_closing():
                self._unparsed = data[start:]
                self.flow.pause_reading()
                return
            piece = data[start:start + self.SLICE]
            if self._phase is not _Phase.BODY:
                self._head_bytes += len(piece)
                if self._head_bytes > limit:
                    self._too_large = True
                    self.send_400_response("")
                    return
            super().data_received(piece)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self._unparsed and not self.pipeline:
            data, self._unparsed = self._unparsed, b""
            self._feed(data)
            self.flow.resume_reading()
        if self._eof and not self._busy():
            self.transport.close()

    # -- parser callbacks: track which part of a request is being read
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _Phase.HEAD
        self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._phase = _Phase.BODY
        self._head_bytes = 0
        self._arm(self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _Phase.IDLE
        self._cancel()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._reject(431, "Request Header Fields Too Large",
                         f"request line and headers exceed {self.limits.max_head_bytes} bytes")
        else:
            super().send_400_response(msg)

    # -- the request timer
    def _arm(self, seconds: float) -> None:
        self._cancel()
        self._timer = self.loop.call_later(seconds, self._expired, seconds)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, seconds: float) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the server holds the request back, not the client
            self._arm(seconds)
            return
        cycle = self.cycle
        answering = cycle is not None and not cycle.response_complete
        if self._phase is _Phase.IDLE and not answering:
            self.transport.close()  # a new connection that never sent a byte
        elif self._phase is _Phase.BODY and cycle is not None and not cycle.response_started:
            cycle.disconnected = True  # the app waiting for this body sees a disconnect
            cycle.message_event.set()
            self._reject(408, "Request Timeout",
                         f"request body not received within {seconds:g} s")
        elif answering and cycle is not None:
            cycle.keep_alive = False  # finish the answer in progress, then close
        elif self._phase is _Phase.BODY:
            self.transport.close()  # the rest of a body already answered
        else:
            self._reject(408, "Request Timeout",
                         f"request headers not received within {seconds:g} s")

    def _reject(self, status: int, reason: str, text: str) -> None:
        self.transport.write(_plain_response(status, reason, text))
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpTools]:
    """A :class:`GuardedHttpTools` subclass bound to ``limits``, for ``uvicorn.Config(http=…)``
    (uvicorn builds the protocol itself, with its own arguments)."""

    class Bound(GuardedHttpTools):
        pass

    Bound.limits = limits
    return Bound

