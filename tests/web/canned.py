"""Known snapshots for the metrics and dashboard tests: a careless client's fleet, before and
after a fake clock moves 45 s (jobs run and finish, more polls arrive)."""

from __future__ import annotations

from typing import Any

from wanmock.server.clock import DEFAULT_EPOCH
from wanmock.server.presets import PRESETS
from wanmock.server.web.dashboard import ClockInfo, PresetInfo, QueueInfo, dashboard_data
from wanmock.server.web.metrics import (
    DOWNLOAD_BUCKETS,
    INTERVAL_BUCKETS,
    LAG_BUCKETS,
    POLLS_BUCKETS,
    ClientViolations,
    Histogram,
    JobRef,
    MetricsSnapshot,
    ProviderMetrics,
    QueueLoad,
)
from wanmock.server.web.runtime import owner_of

CARELESS = owner_of("careless-key")
CAREFUL = owner_of("careful-key")
JOB = "img_01JCANNED0000000000000001"


def snapshot(*, moved: bool = False) -> MetricsSnapshot:
    """Before (``moved=False``) or after the clock moved 45 s."""
    polls = 40 if moved else 24
    therouter = ProviderMetrics(
        requests={("submit", 202): 3, ("submit", 502): 1, ("status", 200): polls,
                  ("status", 503): 2, ("status", 429): 3, ("download", 200): 1 if moved else 0},
        jobs_by_state=({"running": 1, "succeeded": 2} if moved else {"queued": 2, "running": 1}),
        jobs_submitted=3,
        jobs_finished={"succeeded": 2} if moved else {},
        faults={("http-502", "none"): 1, ("http-503", "running"): 2},
        rate_limited=3,
        violations={"poll-after-terminal": 5 if moved else 0, "ignored-retry-after": 2},
        polls_per_job=Histogram.of([9, 14] if moved else [], bounds=POLLS_BUCKETS),
        poll_interval=Histogram.of([1.0] * 10 + [2.5] * 6 + [0.4] * (10 if moved else 2),
                                   bounds=INTERVAL_BUCKETS),
        notice_lag=Histogram.of([0.7, 3.2] if moved else [], bounds=LAG_BUCKETS),
        submit_to_download=Histogram.of([95.5] if moved else [], bounds=DOWNLOAD_BUCKETS),
    )
    runcomfy = ProviderMetrics(
        requests={("submit", 200): 1, ("status", 200): 4, ("result", 200): 1},
        jobs_by_state={"queued": 1},
        jobs_submitted=1,
        violations={"result-before-success": 1},
        poll_interval=Histogram.of([30.0, 30.0, 31.0], bounds=INTERVAL_BUCKETS),
    )
    careless = {"ignored-retry-after": 2, "poll-after-terminal": 5 if moved else 0}
    return MetricsSnapshot(
        providers={"therouter": therouter, "runcomfy": runcomfy},
        journal_dropped=7,
        queues=(QueueLoad(provider="therouter", key=CARELESS, depth=0 if moved else 1,
                          busy=1 if moved else 2),
                QueueLoad(provider="runcomfy", key=CAREFUL, depth=1, busy=0)),
        clients=(ClientViolations(provider="therouter", key=CARELESS, counts=careless),
                 ClientViolations(provider="runcomfy", key=CAREFUL,
                                  counts={"result-before-success": 1})),
        recent_jobs=(JobRef("therouter", JOB),),
    )


def document(*, moved: bool = False, preset: str | None = "flaky") -> dict[str, Any]:
    """The ``dashboard.json`` of :func:`snapshot`."""
    return dashboard_data(
        snapshot(moved=moved),
        clock=ClockInfo(fake=True, now=DEFAULT_EPOCH + (45.0 if moved else 0.0)),
        preset=PresetInfo(current=preset, available=tuple(PRESETS)),
        queues=QueueInfo(concurrency=2, scope="account"))


def journal(job_id: str = JOB) -> dict[str, Any]:
    """What ``GET /__admin/journal?job_id=`` answers for the canned job: a submit, polls, a
    terminal answer, one poll after it (flagged) and a download."""
    t0 = DEFAULT_EPOCH
    rows = [("submit", 202, "queued", 0.0, ()), ("status", 200, "queued", 1.0, ()),
            ("status", 200, "running", 2.0, ()), ("status", 200, "succeeded", 40.0, ()),
            ("status", 200, "succeeded", 41.0, ("poll-after-terminal",)),
            ("download", 200, None, 42.5, ())]
    entries = [{"seq": i, "provider": "therouter", "operation": op, "method": "GET",
                "path": f"/v1/{op}", "job_id": job_id, "key": CARELESS, "status": status,
                "sim_time": t0 + t, "real_time": 0.0, "duration_ms": 0.1, "phase": phase,
                "fault": None, "retry_after": None, "violations": [], "flags": list(flags)}
               for i, (op, status, phase, t, flags) in enumerate(rows)]
    return {"total": len(entries), "entries": entries}
