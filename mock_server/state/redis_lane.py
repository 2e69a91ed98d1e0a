"""One pipelined Redis connection for the hot path (every poll and submit is one ``EVALSHA``).

Why not redis-py's asyncio client for these: measured here, it spends ~110 µs of CPU per command
(connection pool, per-call timeouts, argument encoding), more than the whole in-memory poll; this
lane writes hiredis-packed commands to one connection and matches hiredis-parsed replies to
waiting futures in order (Redis answers in order), ~15 µs a command, and concurrent requests
share the connection (automatic pipelining). Everything else (admin, journal, start-up) uses
redis-py.

Bounded waits: a command unanswered after ``timeout`` seconds closes the connection and fails
every command waiting on it with :class:`TimeoutError` (the caller's 503); the next command
connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from typing import Any

import hiredis
from redis.connection import parse_url

__all__ = ["Lane", "ReplyError"]

ReplyError = hiredis.ReplyError


class _Protocol(asyncio.Protocol):
    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.pending: deque[tuple[asyncio.Future[Any], float]] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        reader, pending = self.reader, self.pending
        reader.feed(data)
        while True:
            reply = reader.gets()
            if reply is False:
                return
            future, _ = pending.popleft()
            if not future.done():
                if isinstance(reply, ReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"Redis closed the connection ({exc or 'EOF'})"))

    def fail(self, error: Exception) -> None:
        if self.lane._protocol is self:
            self.lane._protocol = None
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


class Lane:
    """Pipelined commands on one connection to the Redis at ``url`` (``redis://``/``unix://``;
    its password and db are honoured)."""

    def __init__(self, url: str, *, timeout: float, connect_timeout: float) -> None:
        self.options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.tls = url.startswith("rediss:")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._watch: asyncio.TimerHandle | None = None

    async def call(self, *args: Any) -> Any:
        """One command's reply (a Redis error reply is raised as :data:`ReplyError`)."""
        protocol = self._protocol or await self._connect()
        assert protocol.transport is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.pending.append((future, time.monotonic() + self.timeout))
        protocol.transport.write(hiredis.pack_command(args))
        if self._watch is None:
            self._watch = asyncio.get_running_loop().call_later(self.timeout / 4, self._check)
        return await future

    def _check(self) -> None:
        """Fail everything waiting once the oldest command is overdue (the connection is then
        of no use: its replies would come out of step)."""
        self._watch = None
        protocol = self._protocol
        if protocol is None or not protocol.pending:
            return
        if protocol.pending[0][1] < time.monotonic():
            protocol.fail(TimeoutError(f"Redis did not answer within {self.timeout:g} s"))
            return
        self._watch = asyncio.get_running_loop().call_later(self.timeout / 4, self._check)

    async def _connect(self) -> _Protocol:
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            protocol = await asyncio.wait_for(self._open(), self.connect_timeout)
        except BaseException as exc:
            self._connecting.set_exception(exc)
            with contextlib.suppress(BaseException):
                self._connecting.exception()
            self._connecting = None
            raise
        self._protocol = protocol
        self._connecting.set_result(protocol)
        self._connecting = None
        return protocol

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self.options
        protocol = _Protocol(self)
        if options.get("path"):
            await loop.create_unix_connection(lambda: protocol, options["path"])
        else:
            await loop.create_connection(lambda: protocol, options.get("host", "localhost"),
                                         int(options.get("port", 6379)),
                                         ssl=ssl.create_default_context() if self.tls else None)
        self._protocol = protocol
        if options.get("password"):
            user = options.get("username")
            await self.call("AUTH", *([user] if user else []), options["password"])
        if int(options.get("db", 0) or 0):
            await self.call("SELECT", int(options["db"]))
        return protocol

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._protocol is not None:
            self._protocol.fail(ConnectionError("closed"))
            self._protocol = None
