"""Helpers shared by tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from wanmock.server import FakeClock
from wanmock.server.state import at_once

T = TypeVar("T")


def now(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine of the in-memory state from synchronous code."""
    return at_once(coroutine)


def record_of(app: Any, job_id: str) -> Any:
    """The stored record of a job of an in-process app (``None`` if it has none)."""
    rt = app.state.wanmock
    found = now(rt.state.read(job_id, rt.clock.now())).stored
    return found.record if found is not None else None


async def until_waiting(clock: FakeClock, count: int = 1) -> None:
    """Yield to the event loop until ``count`` requests wait on the fake clock (a synchronous
    call in flight), so that advancing the clock reaches them."""
    for _ in range(100):
        if clock.pending >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError("the sync request never waited on the clock")
