"""Simulated time for a client under test: its sleeps, clocks and timeouts follow the fake's.

Two mechanisms, one per kind of client, both scoped to the thread that runs the client:

* **Async clients run on a virtual-time event loop** (:meth:`Timeline.new_loop`): the loop's
  ``time()`` is simulated and its selector *autojumps* — when no callback is ready, no socket of
  the client is ready and the server is quiet (every request in flight parked on the fake clock,
  see :meth:`~wanmock.contracts.autojump.TrackedServer.quiet`), it moves the clock to the
  earliest of the loop's next timer and the server's next parked deadline. ``asyncio.sleep``,
  ``anyio.sleep`` (which binds ``asyncio.sleep`` at import) and every timeout (anyio cancel
  scopes, ``asyncio.timeout``) are timers of that loop, so they follow simulated time with
  **nothing patched**. A timeout fires only when simulated time really reaches it, and time
  moves only when nothing else can happen, so a read timeout cannot fire because another task
  slept while the answer was on its way.
* **Sync clients block in ``time.sleep``**, which cannot be intercepted without replacing it.
  :func:`simulated` replaces ``time.sleep``, ``time.time``, ``time.monotonic``,
  ``time.perf_counter`` (and their ``_ns`` forms) by thread-aware wrappers: in a thread routed
  to a :class:`Timeline` they sleep on (and read) the simulated clock; in every other thread
  they call the original. Copies made by ``from time import sleep`` in non-standard-library
  modules are rebound too. Blocking socket reads keep their real timeouts, which jumps of
  simulated time (instantaneous in real time) cannot trip.

Why it cannot leak: the wrappers are installed while at least one :func:`simulated` block is
open (a reference count, under a lock) and on the way out every module attribute that holds a
wrapper — those rebound on the way in and any made by modules imported meanwhile — is set back
to the original, so afterwards ``time.sleep is`` the original again. ``asyncio.sleep`` and
anyio's bound copy are never touched. A wrapper that escaped into some other object (a default
argument, a class attribute) routes by thread and finds no route after the block: it behaves
exactly like the original. Routing is per thread, so the test runner's thread and the server's
thread never see simulated time, and scenario order cannot matter: every scenario gets a fresh
clock, loop and route.

What is not simulated: standard-library modules' private copies (``threading``'s timeouts wait
on real locks and must stay real), threads a client starts itself, and an event loop a *sync*
client starts itself (``asyncio.run`` inside it): give ``check_client`` the ``async def`` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import selectors
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from wanmock.server.clock import FakeClock

from .autojump import TrackedServer

__all__ = ["ClientHung", "Timeline", "real_time", "simulated", "unroute"]

_T = TypeVar("_T")

_NAMES = ("sleep", "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
          "perf_counter_ns")
#: The real functions (kept in a dict: a module attribute would itself be rebound).
_REAL: dict[str, Callable[..., Any]] = {name: getattr(time, name) for name in _NAMES}


class ClientHung(BaseException):
    """Raised inside a client that is still waiting past the simulated deadline.

    A ``BaseException`` so that a client's ``except Exception`` cannot swallow it.
    """


class Timeline:
    """One scenario's simulated time, as the client's thread sees it.

    ``hang_at`` is the simulated time past which a waiting client is declared hung.
    """

    def __init__(self, clock: FakeClock, server: TrackedServer, *, hang_at: float) -> None:
        self.clock = clock
        self.server = server
        self.hang_at = hang_at
        #: Held while anyone decides to move the clock (the client, or a server-side driver).
        self.lock = threading.Lock()
        self.hung = False
        #: The client is blocked on its own timer (a sleep, or its loop idle in ``select``).
        self.waiting = False
        #: The client runs an event loop that moves the clock itself.
        self.looping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sim0 = clock.now()
        # Whole seconds: ``origin + elapsed`` is then exact for elapsed times like 5 s or
        # 0.25 s, so the same client makes the same comparisons (``elapsed < 600``) in every
        # run; a fractional origin would round differently from run to run.
        self._mono0 = float(math.floor(_REAL["monotonic"]()))
        self._perf0 = float(math.floor(_REAL["perf_counter"]()))

    # The time functions as the routed thread sees them: ``time.time`` is the simulated Unix
    # time; ``monotonic`` and ``perf_counter`` continue the real ones from when the timeline
    # was made, moving only with simulated time.

    def time(self) -> float:
        return self.clock.now()

    def time_ns(self) -> int:
        return int(self.clock.now() * 1e9)

    def monotonic(self) -> float:
        return self._mono0 + (self.clock.now() - self._sim0)

    def monotonic_ns(self) -> int:
        return int(self.monotonic() * 1e9)

    def perf_counter(self) -> float:
        return self._perf0 + (self.clock.now() - self._sim0)

    def perf_counter_ns(self) -> int:
        return int(self.perf_counter() * 1e9)

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` on the simulated clock: returns once it reached now + ``seconds``."""
        seconds = float(seconds)
        if not seconds >= 0:
            raise ValueError(f"sleep length must be non-negative, got {seconds!r}")
        now = self.clock.now()
        if now + seconds > self.hang_at:  # (a sleep of ``inf`` too): wait until then, no more
            if now < self.hang_at:
                self.sleep(self.hang_at - now)
            self.hung = True
            raise ClientHung(f"still waiting {self.hang_at - self._sim0:.0f} simulated seconds "
                             "in")
        target = now + seconds
        try:
            while self.clock.now() < target:
                with self.lock:
                    self.waiting = True
                    if self.server.quiet():
                        parked = self.clock.next_deadline()
                        self.clock.jump_to(target if parked is None else min(target, parked))
                        continue
                _REAL["sleep"](0.0002)  # the server is finishing a request: let it
        finally:
            self.waiting = False
        _REAL["sleep"](0)

    def server_may_jump(self) -> bool:
        """Whether a server-side driver may move the clock now: not while the client moves it
        itself (a sync sleep, or an event loop, which knows the client's timers)."""
        return not (self.waiting or self.looping)

    # The event loop of async clients.

    def new_loop(self) -> asyncio.AbstractEventLoop:
        """A fresh event loop on this timeline (``asyncio.Runner(loop_factory=...)``)."""
        self.looping = True
        self._loop = _VirtualLoop(self)
        return self._loop

    def idle(self, poll: Callable[[float], list[Any]], timeout: float | None) -> list[Any]:
        """The loop has nothing to do until an I/O event or ``timeout`` simulated seconds.

        Waits for real while the server works or threads work for the loop; once the server is
        quiet *and then* none of the client's sockets is ready (an answer sent just before the
        server went quiet must be read before any timer fires), jumps the clock to the loop's
        next timer or the server's next parked deadline, whichever comes first. A server that
        never goes quiet makes the client wait in real time (and the scenario's real-time bound
        reports it)."""
        target = None if timeout is None else self.clock.now() + max(timeout, 1e-6)
        while True:
            wait = 0.0005  # the server is working: look again soon
            with self.lock:
                self.waiting = True
                try:
                    if (not self.hung and not self._threads_busy()
                            and self.server.quiet()):
                        ready = poll(0)
                        if ready:
                            return ready
                        parked = self.clock.next_deadline()
                        steps = [t for t in (target, parked) if t is not None]
                        if steps:
                            step = min(steps)
                            if step > self.hang_at:
                                self._hang()
                            else:
                                self.clock.jump_to(step)
                            return poll(0)
                        wait = 0.01  # nothing will happen by time: wait for I/O only
                finally:
                    self.waiting = False
            ready = poll(wait)
            if ready:
                return ready

    def _threads_busy(self) -> bool:
        loop = self._loop
        return isinstance(loop, _VirtualLoop) and loop.waits_on_threads()

    def _hang(self) -> None:
        """The client would wait past ``hang_at``: cancel everything it runs."""
        self.hung = True
        if self._loop is not None:
            for task in asyncio.all_tasks(self._loop):
                task.cancel()


class _VirtualSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking, lets the timeline move simulated time."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self._timeline = timeline

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        return self._timeline.idle(super().select, timeout)


class _VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose time is the timeline's simulated monotonic clock, and which knows
    when it is waiting for work in threads (real time: no jump may overtake it)."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline
        self._in_threads = 0
        super().__init__(_VirtualSelector(timeline))

    def time(self) -> float:
        return self._timeline.monotonic()

    def run_in_executor(  # type: ignore[override]  # the typeshed signature is generic
        self, executor: concurrent.futures.Executor | None, func: Callable[..., _T], *args: Any,
    ) -> asyncio.Future[_T]:
        # getaddrinfo, asyncio.to_thread and friends: count them until their answer is back
        future = super().run_in_executor(executor, func, *args)
        self._in_threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, future: asyncio.Future[Any]) -> None:
        self._in_threads -= 1

    def waits_on_threads(self) -> bool:
        """Work handed to threads is still running (``run_in_executor``, anyio's workers)."""
        if self._in_threads:
            return True
        to_thread = sys.modules.get("anyio.to_thread")
        if to_thread is None:
            return False
        try:
            return bool(to_thread.current_default_thread_limiter().borrowed_tokens)
        except Exception:  # anyio not running on this loop: no anyio worker threads either
            return False


class _Router:
    """The process-wide side: thread-aware wrappers, installed while anyone needs them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.routes: dict[int, Timeline] = {}
        self.users = 0
        self.wrappers = {name: self._wrapper(name) for name in _NAMES}

    def _wrapper(self, name: str) -> Callable[..., Any]:
        real = _REAL[name]
        routes = self.routes
        ident = threading.get_ident

        def wrapper(*args: Any) -> Any:
            timeline = routes.get(ident())
            if timeline is None:
                return real(*args)
            return getattr(timeline, name)(*args)

        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper.__doc__ = real.__doc__
        wrapper.__wrapped__ = real  # type: ignore[attr-defined]
        return wrapper

    def enter(self) -> None:
        with self.lock:
            if self.users == 0:
                _rebind(_REAL, self.wrappers)
            self.users += 1

    def exit(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                _rebind(self.wrappers, _REAL)


def _rebind(old: dict[str, Callable[..., Any]], new: dict[str, Callable[..., Any]]) -> None:
    """Every module attribute holding one of ``old`` now holds its counterpart in ``new``.

    Standard-library modules other than ``time`` keep their copies: their timeouts wait on real
    locks and selectors. So do wanmock's own modules: the harness waits in real time."""
    by_id = {id(function): name for name, function in old.items()}
    stdlib = sys.stdlib_module_names
    for module_name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType):
            continue
        top = module_name.partition(".")[0]
        if module_name != "time" and (top in stdlib or top == "wanmock"):
            continue
        namespace = module.__dict__
        for attr, value in list(namespace.items()):
            name = by_id.get(id(value))
            if name is not None and value is old[name]:
                namespace[attr] = new[name]


_ROUTER = _Router()  # process-wide by nature: it stands for the process-wide ``time`` module


@contextmanager
def simulated() -> Iterator[Callable[[Timeline | None], None]]:
    """While open, ``time`` functions are thread-aware wrappers; yields ``route(timeline)``,
    which routes the calling thread to a timeline (``None``: back to real time).

    >>> import time
    >>> real = time.sleep
    >>> with simulated() as route:
    ...     wrapped = time.sleep is not real
    >>> wrapped, time.sleep is real
    (True, True)
    """
    _ROUTER.enter()
    routed: set[int] = set()

    def route(timeline: Timeline | None) -> None:
        me = threading.get_ident()
        if timeline is None:
            _ROUTER.routes.pop(me, None)
            routed.discard(me)
        else:
            _ROUTER.routes[me] = timeline
            routed.add(me)

    try:
        yield route
    finally:
        for ident in routed:
            _ROUTER.routes.pop(ident, None)
        _ROUTER.exit()


def real_time() -> tuple[Callable[[], float], Callable[[float], None]]:
    """The real ``time.monotonic`` and ``time.sleep``, whatever is installed now."""
    return _REAL["monotonic"], _REAL["sleep"]


def unroute(thread: threading.Thread) -> None:
    """Forget the route of a thread (one left running after its scenario timed out)."""
    if thread.ident is not None:
        _ROUTER.routes.pop(thread.ident, None)
