"""Simulated time: the one place wanmock reads a real clock.

Everything else receives a :class:`Clock` and asks it for ``now()`` (Unix seconds, float, on
the *simulated* timeline). Two implementations:

* :class:`RealClock` follows the machine's monotonic clock, optionally sped up:
  ``RealClock(scale=1000)`` turns a 60 s job into 60 ms of real time.
* :class:`FakeClock` only moves when told to: ``clock.advance(30)``. It refuses to go backwards.

Both offer ``await clock.sleep_until(t)``, which the HTTP layer uses for sync-mode waits and
injected response delays; on a fake clock it returns when ``advance`` passes ``t``.

>>> clock = FakeClock(start=1_000.0)
>>> clock.advance(5)
>>> clock.now()
1005.0
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_EPOCH", "Clock", "FakeClock", "RealClock"]

#: Where a fake clock starts unless told otherwise: the ``created_at`` of TheRouter's documented
#: example job (2026-05-13 01:54:09 UTC), so fake timestamps look like real ones.
DEFAULT_EPOCH = 1_778_637_249.0


@runtime_checkable
class Clock(Protocol):
    """A source of simulated time."""

    def now(self) -> float:
        """Current simulated time in Unix seconds."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (immediately if it already is)."""
        ...


class RealClock:
    """Wall-clock time, optionally scaled.

    ``scale`` simulated seconds pass per real second. The simulated timeline starts at the real
    wall-clock time when the clock is created, so timestamps stay plausible.
    """

    def __init__(self, scale: float = 1.0, *, start: float | None = None) -> None:
        if not scale > 0:
            raise ValueError(f"time scale must be > 0, got {scale!r}")
        self.scale = float(scale)
        self._origin_sim = time.time() if start is None else float(start)
        self._origin_mono = time.monotonic()

    def now(self) -> float:
        return self._origin_sim + (time.monotonic() - self._origin_mono) * self.scale

    async def sleep_until(self, deadline: float) -> None:
        remaining = deadline - self.now()
        if remaining > 0:
            await asyncio.sleep(remaining / self.scale)

    def __repr__(self) -> str:
        return f"RealClock(scale={self.scale:g})"


class FakeClock:
    """A clock that moves only by :meth:`advance` or :meth:`set`; safe to drive from any thread.

    Coroutines waiting in :meth:`sleep_until` are woken, in deadline order, on the event loop
    they were created on.
    """

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._waiters: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if not seconds >= 0:
            raise ValueError(f"a fake clock cannot go backwards: advance({seconds!r})")
        self.set(self._now + seconds)

    async def move(self, seconds: float) -> None:
        """:meth:`advance` for every process sharing this clock (a plain fake clock: this one;
        a shared one writes the shared time first, see ``state/redis.py``)."""
        self.advance(seconds)

    def set(self, when: float) -> None:
        """Jump to the absolute simulated time ``when`` (not before the current time)."""
        self._move(when, strict=True)

    def jump_to(self, when: float) -> bool:
        """Move to ``when`` if that is later than now; returns whether the clock moved.

        For drivers that may race (a client's sleep and a server-side autojump): whichever
        asks for the later time wins, and nobody sees "cannot go backwards"."""
        return self._move(when, strict=False)

    def _move(self, when: float, *, strict: bool) -> bool:
        with self._lock:
            if when < self._now:
                if strict:
                    raise ValueError(
                        f"a fake clock cannot go backwards: now={self._now}, asked for {when}"
                    )
                return False
            moved = when > self._now
            self._now = float(when)
            due = []
            while self._waiters and self._waiters[0][0] <= self._now:
                due.append(heapq.heappop(self._waiters))
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for _, _, loop, future in due:
            if loop is here:
                _resolve(future)  # same thread: wake now, so one loop turn sees it
            else:
                loop.call_soon_threadsafe(_resolve, future)
        return moved

    async def sleep_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if deadline <= self._now:
                return
            heapq.heappush(self._waiters, (deadline, next(self._order), loop, future))
        try:
            await future
        except asyncio.CancelledError:  # the waiter gave up: forget it
            with self._lock:
                self._waiters = [w for w in self._waiters if w[3] is not future]
                heapq.heapify(self._waiters)
            raise

    def next_deadline(self) -> float | None:
        """The earliest time a waiting coroutine wants, if any (for autojumping drivers)."""
        with self._lock:
            return self._waiters[0][0] if self._waiters else None

    @property
    def pending(self) -> int:
        """How many coroutines are currently waiting on this clock."""
        return len(self._waiters)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now})"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
