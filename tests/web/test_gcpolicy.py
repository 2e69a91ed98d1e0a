"""The collector policy: installed for the app's lifespan only, and it freezes survivors."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

from wanmock.server import Config, FakeClock, create_app
from wanmock.server.web import gcpolicy


def _during_lifespan(config: Config, check: Callable[[], None]) -> None:
    """Start the app's lifespan, run ``check``, shut it down."""
    app = create_app(config, clock=FakeClock())

    async def run() -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        check()
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task

    asyncio.run(run())


def _scanned(objects: list[Any]) -> int:
    """How many of ``objects`` the collector still walks (frozen ones are in no generation)."""
    ids = {id(thing) for thing in objects}
    return sum(1 for thing in gc.get_objects() if id(thing) in ids)


def test_survivors_of_a_full_collection_are_frozen_while_served() -> None:
    # Judged on the objects themselves, not on gc.get_freeze_count(): frozen objects that die
    # by reference counting leave the count, so a difference of counts is not exact.
    seen: dict[str, int] = {}

    def check() -> None:
        assert gcpolicy.installed()
        kept = [[i] for i in range(10_000)]  # tracked objects that survive
        seen["before"] = _scanned(kept)
        gc.collect()
        seen["after"] = _scanned(kept)
        assert all(gc.is_tracked(thing) for thing in kept)

    _during_lifespan(Config().replace(server={"gc_freeze": True}), check)
    assert seen == {"before": 10_000, "after": 0}
    assert not gcpolicy.installed() and gc.get_freeze_count() == 0  # all undone at shutdown


def test_without_the_policy_survivors_stay_scanned() -> None:
    """The known-good counterpart: the same survivors, no policy, still walked."""
    kept = [[i] for i in range(10_000)]
    gc.collect()
    assert _scanned(kept) == 10_000


def test_off_by_default_and_never_in_process() -> None:
    """Off by default (issue 11): garbage alive at a freeze that later dies in a cycle is never
    freed — a non-reading client grew the fake from 235 to 421 MB with it, 197 MB without."""
    assert Config().server.gc_freeze is False
    _during_lifespan(Config(), lambda: _assert(not gcpolicy.installed()))
    create_app(Config(), clock=FakeClock())  # building an app changes nothing global
    assert not gcpolicy.installed()


def _assert(condition: bool) -> None:
    assert condition


