"""Named presets: configuration overlays for the common cases, listed by ``wanmock presets``.

A preset is plain data, applied by :meth:`Config.with_preset` (``preset = "flaky"`` in TOML,
``--preset`` at start-up, ``POST /__admin/preset`` at runtime). Presets touch only lifecycle,
faults, latency and rate limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PRESETS"]

#: name -> (one-line description, overlay)
PRESETS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "happy": ("every job succeeds in the documented 30-180 s; no faults", {}),
    "slow": (
        "long queues and runs (log-normal, median 150 s, up to 10 min) and slow responses",
        {
            "lifecycle": {"queue_delay": "uniform(10, 60)",
                          "run_time": "lognormal(median=150, sigma=0.5, low=60, high=600)"},
            "latency": {"submit": "lognormal(median=1.5, sigma=0.5)",
                        "status": "lognormal(median=0.4, sigma=0.5)",
                        "result": "lognormal(median=0.4, sigma=0.5)"},
        },
    ),
    "flaky": (
        "10% of jobs fail; 5% of polls answer 503, 2% of submits 502, 1% of requests drop",
        {
            "lifecycle": {"failure_rate": 0.1},
            "faults": {"rules": [
                {"fault": "http-503", "rate": 0.05, "operation": "status", "retry_after": 2},
                {"fault": "http-502", "rate": 0.02, "operation": "submit"},
                {"fault": "drop", "rate": 0.01},
                {"fault": "truncated-json", "rate": 0.01, "operation": "status"},
            ]},
        },
    ),
    "moderation": (
        "every job fails content moderation part-way through its run",
        {"lifecycle": {"failure_rate": 1.0, "failure_kinds": ["moderation"]}},
    ),
    "rate-limited": (
        "tight per-key budgets: 2 submits per minute, 10 polls per 10 s (429 + Retry-After)",
        {"rate_limit": {"submit": "2/60", "poll": "10/10"}},
    ),
    "outage": (
        "every provider request answers 503 with Retry-After: 30",
        {"faults": {"rules": [{"fault": "http-503", "rate": 1.0, "retry_after": 30}]}},
    ),
    "congested": (
        "300 jobs ahead of each new one, draining one every 2 s (positions in the hundreds)",
        {"lifecycle": {"backlog": 300, "backlog_drain": 2.0}},
    ),
    "stuck": (
        "jobs never leave the queue (until they expire)",
        {"lifecycle": {"stuck_rate": 1.0}},
    ),
}
