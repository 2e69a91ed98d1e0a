"""A big fleet built straight into an app's state (no HTTP): ``jobs`` jobs of ``keys`` clients in
every phase, and a journal past its capacity. For the scale test and the snapshot benchmark."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from wanmock.server import Config, FakeClock, create_app
from wanmock.server.journal import Request
from wanmock.server.lifecycle import JobRecord, JobRequest, Slotted
from wanmock.server.state import Admission, at_once
from wanmock.server.vocab import Operation, Phase
from wanmock.server.web.runtime import Runtime, owner_of

REQUEST = JobRequest(model="m", prompt="p", width=8, height=8)


def fleet(jobs: int, *, keys: int = 50, requests: int = 30_000) -> Runtime:
    """An app's runtime holding ``jobs`` jobs (queued, running, finished, expired, cancelled)
    over both providers and ``keys`` keys, and ``requests`` journalled requests."""
    clock = FakeClock()
    config = Config().replace(server={"seed": 1})
    rt: Runtime = create_app(config, clock=clock).state.wanmock
    state = rt.state
    providers = sorted(rt.dialects)
    owners = [owner_of(f"key-{i}") for i in range(keys)]
    # Submits spread so each of the 2 x ``keys`` queues gets one every ~70 s (light queueing:
    # 2 slots, runs of 30-90 s), over ~19 simulated hours: the first ones have expired by then.
    step = 70_000.0 / jobs
    for i in range(jobs):
        now = clock.now()
        provider, owner = providers[i % len(providers)], owners[i % keys]
        record = JobRecord(id=f"job{i}", provider=provider, owner=owner, request=REQUEST,
                           created_at=now, start_at=math.inf, end_at=math.inf,
                           expires_at=now + 40_000, evict_at=now + 10**6,
                           schedule=Slotted("", -1))
        admission = Admission(f"{provider}:{owner}", now + 2, 30.0 + i % 60, 2)
        created = at_once(state.create(record, admission, now))
        if i % 7 == 0 and created.stored is not None:
            at_once(state.cancel(record.id, created.stored.version, now, queued=True))
        clock.advance(step)
    now = clock.now()
    for i in range(requests):  # polls of the last jobs: summaries and ring both full
        job = f"job{i % 12_000}"  # more jobs than the journal summarises
        at_once(state.record(Request(providers[i % 2], Operation.STATUS, "GET", f"/x/{job}",
                                     job, owners[i % keys], 200, now + i * 0.01, 0.0, 0.1,
                                     Phase.RUNNING)))
    return rt


def calls(work: Callable[[], Any]) -> int:
    """How many Python and C functions ``work()`` calls (a count of work done, not a time)."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count
