"""A live fake whose fake clock moves by itself when everyone is waiting on it (autojump).

trio's ``MockClock(autojump_threshold=...)`` idea, across a real socket: simulated time may jump
only when nothing can happen without it. The server side of that judgement lives here:

* :class:`Watched` wraps one app and counts its requests in flight;
* :class:`TrackedServer` serves an app with uvicorn on an event loop whose selector says when the
  loop is blocked, so :meth:`TrackedServer.quiet` can take a consistent snapshot: the loop is
  blocked in ``select``, none of its sockets has unread data or room to write pending output,
  and every request in flight is parked on the fake clock (``in_flight <= clock.pending``);
* :class:`Autojump` is a thread that, once the server has stayed quiet for ``threshold`` real
  seconds, moves the clock to the next time something happens (a parked request's deadline,
  or — for the pytest plugin — the next state change of an unfinished job).

Why the socket check: a request the client has just sent sits in the kernel before the server's
loop wakes up, and counting requests in the app alone would miss it; a readable socket does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import select
import selectors
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from wanmock.server.clock import FakeClock
from wanmock.server.state import at_once
from wanmock.server.web.serve import base_url, bind, quiet_dropped_connections

__all__ = ["Autojump", "TrackedServer", "Watched", "next_job_change"]


class Watched:
    """An ASGI app and the fake clock it runs on, with its requests in flight counted.

    Counting happens on the server's event loop only, so a plain integer suffices; other threads
    only read it.
    """

    def __init__(self, app: ASGIApp, clock: FakeClock) -> None:
        self.app = app
        self.clock = clock
        self.in_flight = 0
        #: Requests started so far (a progress counter for "nothing changed meanwhile").
        self.started = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        self.started += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def settled(self) -> bool:
        """Every request in flight is parked on the clock (none is being worked on)."""
        return self.in_flight <= self.clock.pending

    def release(self) -> None:
        """Wake every request still parked on the clock (before the server stops)."""
        while (deadline := self.clock.next_deadline()) is not None and not math.isinf(deadline):
            self.clock.jump_to(deadline)


class _Switch:
    """The app a :class:`TrackedServer` serves: one :class:`Watched` at a time."""

    def __init__(self, target: Watched) -> None:
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.target(scope, receive, send)


class _WatchedSelector(selectors.DefaultSelector):
    """The server loop's selector, telling other threads when the loop is blocked in it."""

    blocked = False
    wakeups = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return super().select(timeout)
        self.blocked = True
        try:
            return super().select(timeout)
        finally:
            self.blocked = False
            self.wakeups += 1


def _ready(reads: list[int], writes: list[int]) -> bool:
    """Whether any of these descriptors has data to read or room to write, right now."""
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in reads:
            poller.register(fd, select.POLLIN)
        for fd in writes:
            poller.register(fd, select.POLLOUT | (select.POLLIN if fd in reads else 0))
        return bool(poller.poll(0))
    readable, writable, _ = select.select(reads, writes, [], 0)  # pragma: no cover (Windows)
    return bool(readable or writable)


class TrackedServer:
    """Serve a :class:`Watched` app with uvicorn on a free loopback port, in a thread, on a
    loop whose quiescence other threads can observe. ``serve(other)`` swaps the app served."""

    def __init__(self, app: Watched, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        self._switch = _Switch(app)
        config = uvicorn.Config(self._switch, log_level="warning", lifespan="off",
                                access_log=False, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._selector = _WatchedSelector()
        self._thread = threading.Thread(target=self._run, daemon=True, name="wanmock-server")

    @property
    def app(self) -> Watched:
        return self._switch.target

    def serve(self, app: Watched) -> None:
        """Answer every request from now on with ``app``."""
        self._switch.target = app

    def _run(self) -> None:
        loop = asyncio.SelectorEventLoop(self._selector)
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        finally:
            loop.close()

    def start(self) -> TrackedServer:
        quiet_dropped_connections()
        self._thread.start()
        deadline = time.monotonic() + 10  # a real-time start-up bound, not a simulated wait
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        self.app.release()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> TrackedServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def quiet(self) -> bool:
        """A snapshot: nothing happens on the server until the clock moves.

        The loop is blocked in ``select`` before and after the other checks (with no wakeup in
        between), no socket of it is ready, and every request in flight is parked on the clock.
        """
        selector = self._selector
        wakeups = selector.wakeups
        if not selector.blocked or not self.app.settled():
            return False
        try:
            keys = list(selector.get_map().values())
        except RuntimeError:  # the loop changed its registrations meanwhile: not quiet
            return False
        reads = [k.fd for k in keys if k.events & selectors.EVENT_READ]
        writes = [k.fd for k in keys if k.events & selectors.EVENT_WRITE]
        try:
            if _ready(reads, writes):
                return False
        except (OSError, ValueError):  # a socket closed meanwhile
            return False
        return selector.blocked and selector.wakeups == wakeups and self.app.settled()


def next_job_change(app: Any, now: float) -> float | None:
    """The next instant an unfinished job of a wanmock app changes phase (``None``: never).

    Finished jobs are left alone: jumping to their expiry would expire results a client is
    about to download."""
    soonest: float | None = at_once(app.state.wanmock.state.next_change(now))
    return soonest


class Autojump:
    """A thread that moves a fake clock once the server has been quiet for ``threshold`` real
    seconds: to the earliest parked deadline, or to ``also()`` if that is sooner.

    ``allowed()`` (checked under :attr:`lock`) lets a client-side driver hold it off while the
    client moves the clock itself; take :attr:`lock` around such moves.
    """

    def __init__(self, server: TrackedServer, *, threshold: float = 0.02,
                 also: Callable[[float], float | None] | None = None,
                 allowed: Callable[[], bool] | None = None,
                 lock: threading.Lock | None = None) -> None:
        if not threshold >= 0:
            raise ValueError(f"autojump threshold must be >= 0 s, got {threshold!r}")
        self.server = server
        self.threshold = threshold
        self.also = also
        self.allowed = allowed
        self.lock = lock or threading.Lock()
        #: How many times the clock was moved (for tests and reports).
        self.jumps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="wanmock-autojump")

    def start(self) -> Autojump:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Autojump:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _target(self) -> float | None:
        clock = self.server.app.clock
        candidates = [clock.next_deadline()]
        if self.also is not None:
            candidates.append(self.also(clock.now()))
        found = [t for t in candidates if t is not None and not math.isinf(t)]
        return min(found) if found else None

    def _run(self) -> None:
        tick = max(self.threshold / 4, 0.001)
        quiet_since = 0.0
        seen: tuple[int, float] | None = None  # (requests started, now) when the quiet began
        while not self._stop.wait(tick):
            app = self.server.app
            state = (app.started, app.clock.now())
            if self._target() is None or not self.server.quiet():  # the cheap test first
                seen = None
                continue
            if state != seen:  # quiet, but something happened since: start counting again
                seen, quiet_since = state, time.monotonic()
                continue
            if time.monotonic() - quiet_since < self.threshold:
                continue
            with self.lock:
                if self.allowed is not None and not self.allowed():
                    continue
                target = self._target()
                if target is not None and self.server.quiet():
                    with contextlib.suppress(RuntimeError):  # a loop closed under us
                        if app.clock.jump_to(target):
                            self.jumps += 1
            seen = None
