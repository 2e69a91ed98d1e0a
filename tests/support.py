"""Helpers shared by tests."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

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
