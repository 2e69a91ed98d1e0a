"""Short collector pauses while serving: freeze what survives each full collection.

CPython's cyclic collector walks every tracked object in a full (generation-2) collection. A fake
holding a few hundred thousand jobs (two or three tracked objects each) then stops the world for
100-250 ms — every connection's latency spikes, and a load test measures the fake instead of
the client. Job records are acyclic and are freed by reference counting anyway, so after each
full collection :func:`install` moves the survivors into the permanent generation
(:func:`gc.freeze`); later collections walk only what is new. Measured in-process at 200k jobs:
the longest pause went from 244 ms to 31 ms (``benchmarks/server.py`` shows the p99).

The cost: an object alive at a freeze that later becomes part of an unreachable *cycle* is never
reclaimed (objects freed by reference counting — records, journal entries — are unaffected).
Installed only while the app is served (its lifespan), when ``server.gc_freeze`` is on.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["install", "installed", "uninstall"]


def _freeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def install() -> None:
    """Freeze survivors after every full collection, from now on (idempotent)."""
    if _freeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_freeze_after_full_collection)
        gc.freeze()  # what start-up made (modules, config, app) never needs scanning again


def uninstall() -> None:
    """Back to the stock collector; frozen objects are scanned again."""
    while _freeze_after_full_collection in gc.callbacks:
        gc.callbacks.remove(_freeze_after_full_collection)
    gc.unfreeze()


def installed() -> bool:
    return _freeze_after_full_collection in gc.callbacks
