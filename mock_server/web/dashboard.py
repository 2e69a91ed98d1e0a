"""The live dashboard: its page, the JSON it polls, and what each number on it means.

``GET /__admin/`` serves :func:`page` (one self-contained HTML file, no network beyond this
server). The page polls ``GET /__admin/dashboard.json`` — :func:`dashboard_data`, a pure function
of a :class:`~wanmock.server.web.metrics.MetricsSnapshot` plus the clock, preset and queue facts —
and validates against ``schemas/admin/dashboard.json``.

Every number the page shows carries ``data-metric="<name>"`` and ``data-value="<raw value>"``.
:func:`flat_numbers` lists them for a data document (what the page must show) and
:func:`metric_value` finds the same number in a Prometheus scrape, so a browser test can hold the
page, the JSON and ``/__admin/metrics`` to one truth.

>>> from wanmock.server.web.metrics import MetricsSnapshot, ProviderMetrics
>>> snap = MetricsSnapshot(providers={"therouter": ProviderMetrics(jobs_by_state={"queued": 2})})
>>> data = dashboard_data(snap, clock=ClockInfo(fake=True, now=60.0),
...                       preset=PresetInfo(current=None, available=("happy",)),
...                       queues=QueueInfo(concurrency=2, scope="account"))
>>> flat_numbers(data)["jobs.therouter.queued"]
2
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .metrics import (
    MAX_KEY_LABELS,
    OUTCOMES,
    STATES,
    VIOLATION_KINDS,
    Histogram,
    MetricsSnapshot,
    ProviderMetrics,
    fold_keys,
)

__all__ = [
    "HISTOGRAMS",
    "PAGE_HEADERS",
    "SCHEMA_VERSION",
    "ClockInfo",
    "PresetInfo",
    "QueueInfo",
    "dashboard_data",
    "flat_numbers",
    "metric_names",
    "metric_value",
    "page",
    "parse_scrape",
]

SCHEMA_VERSION = 1
#: Headers to serve :func:`page` with. The page may load nothing from elsewhere and talk only to
#: its own origin; no other site may frame it (its buttons change the server).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                               "style-src 'unsafe-inline'; connect-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
#: Histogram name in the JSON and in ``data-metric`` -> Prometheus metric name.
HISTOGRAMS = {
    "polls_per_job": "wanmock_polls_per_job",
    "poll_interval": "wanmock_poll_interval_seconds",
    "notice_lag": "wanmock_notice_lag_seconds",
    "submit_to_download": "wanmock_submit_to_download_seconds",
}
QUANTILES = {"p50": 0.5, "p90": 0.9}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockInfo:
    """The simulated clock: fake (moves on ``advance``) or real with a ``scale``."""

    fake: bool
    now: float
    scale: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PresetInfo:
    """The preset in force (``None``: the plain configuration) and those one may switch to."""

    current: str | None
    available: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueInfo:
    """Static facts about the scheduler queues: slots per queue, and who shares a queue."""

    concurrency: int
    scope: str


@functools.cache
def page() -> bytes:
    """The dashboard's HTML (package data, read once)."""
    return (importlib.resources.files(__package__) / "dashboard.html").read_bytes()


def _histogram(h: Histogram) -> dict[str, Any]:
    data: dict[str, Any] = {"bounds": list(h.bounds), "buckets": list(h.per_bucket),
                            "count": h.count, "sum": h.sum, "mean": h.mean}
    for name, q in QUANTILES.items():
        data[name] = h.quantile(q)
    return data


def _provider(p: ProviderMetrics) -> dict[str, Any]:
    requests: dict[str, dict[str, Any]] = {}
    for (endpoint, status), n in sorted(p.requests.items()):
        entry = requests.setdefault(endpoint, {"total": 0, "by_status": {}})
        entry["total"] += n
        entry["by_status"][str(status)] = n
    return {
        "jobs": {state: p.jobs_by_state.get(state, 0) for state in STATES},
        "submitted": p.jobs_submitted,
        "finished": {outcome: p.jobs_finished.get(outcome, 0) for outcome in OUTCOMES},
        "requests": requests,
        "rate_limited": p.rate_limited,
        "violations": {kind: p.violations.get(kind, 0) for kind in VIOLATION_KINDS},
        "faults": [{"kind": kind, "phase": phase, "count": n}
                   for (kind, phase), n in sorted(p.faults.items())],
        "histograms": {name: _histogram(getattr(p, name)) for name in HISTOGRAMS},
    }


def dashboard_data(snapshot: MetricsSnapshot, *, clock: ClockInfo, preset: PresetInfo,
                   queues: QueueInfo, max_keys: int = MAX_KEY_LABELS) -> dict[str, Any]:
    """The document ``GET /__admin/dashboard.json`` answers (``schemas/admin/dashboard.json``).

    Per-key lists are folded to the ``max_keys`` heaviest, as in the metrics."""
    top, rest = fold_keys(snapshot.queues, max_keys)
    worst, _ = fold_keys(snapshot.clients, max_keys, rest=False)
    keys: dict[str, int] = {}
    for load in snapshot.queues:
        keys[load.provider] = keys.get(load.provider, 0) + 1
    return {
        "version": SCHEMA_VERSION,
        "clock": {"fake": clock.fake, "now": clock.now, "scale": clock.scale},
        "preset": {"current": preset.current, "available": list(preset.available)},
        "providers": {name: _provider(p) for name, p in sorted(snapshot.providers.items())},
        "queues": {
            "concurrency": queues.concurrency,
            "scope": queues.scope,
            "keys": {name: keys.get(name, 0) for name in sorted(snapshot.providers)},
            "top": [{"provider": q.provider, "key": q.key, "depth": q.depth, "busy": q.busy}
                    for q in top],
            "other": [{"provider": provider, "keys": len(loads),
                       "depth": sum(q.depth for q in loads), "busy": sum(q.busy for q in loads)}
                      for provider, loads in sorted(rest.items())],
        },
        "worst_clients": [{"provider": c.provider, "key": c.key, "total": c.weight,
                           "violations": dict(sorted(c.counts.items()))} for c in worst],
        "journal": {"dropped": snapshot.journal_dropped},
        "recent_jobs": [{"provider": j.provider, "job_id": j.job_id}
                        for j in snapshot.recent_jobs],
    }


def flat_numbers(data: Mapping[str, Any]) -> dict[str, float]:
    """Every number the page shows for ``data``, by its ``data-metric`` name.

    Optional parts missing from ``data`` contribute nothing; ``null`` statistics (an empty
    histogram's mean) are shown as a dash and are not numbers. Request *rates* are the page's
    own arithmetic over successive documents (``rate.<provider>.<endpoint>``) and not listed."""
    out: dict[str, float] = {}
    if "clock" in data:
        out["clock.now"] = data["clock"]["now"]
    for p, d in data.get("providers", {}).items():
        for state, n in d.get("jobs", {}).items():
            out[f"jobs.{p}.{state}"] = n
        if "submitted" in d:
            out[f"submitted.{p}"] = d["submitted"]
        for outcome, n in d.get("finished", {}).items():
            out[f"finished.{p}.{outcome}"] = n
        for endpoint, r in d.get("requests", {}).items():
            out[f"requests.{p}.{endpoint}"] = r["total"]
            for status, n in r["by_status"].items():
                out[f"requests.{p}.{endpoint}.{status}"] = n
        if "rate_limited" in d:
            out[f"rate_limited.{p}"] = d["rate_limited"]
        for kind, n in d.get("violations", {}).items():
            out[f"violations.{p}.{kind}"] = n
        for f in d.get("faults", []):
            out[f"faults.{p}.{f['kind']}.{f['phase']}"] = f["count"]
        for name, h in d.get("histograms", {}).items():
            for stat in ("count", "sum", "mean", *QUANTILES):
                if h.get(stat) is not None:
                    out[f"hist.{p}.{name}.{stat}"] = h[stat]
            for i, n in enumerate(h["buckets"]):
                out[f"hist.{p}.{name}.bucket.{i}"] = n
    queues = data.get("queues", {})
    for p, n in queues.get("keys", {}).items():
        out[f"queue_keys.{p}"] = n
    for q in (*queues.get("top", []), *({**o, "key": "other"} for o in queues.get("other", []))):
        out[f"queue.{q['provider']}.{q['key']}.depth"] = q["depth"]
        out[f"queue.{q['provider']}.{q['key']}.busy"] = q["busy"]
    for c in data.get("worst_clients", []):
        out[f"worst.{c['provider']}.{c['key']}.total"] = c["total"]
        for kind, n in c["violations"].items():
            out[f"worst.{c['provider']}.{c['key']}.{kind}"] = n
    if "journal" in data:
        out["journal.dropped"] = data["journal"]["dropped"]
    return out


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse_scrape(exposition: str | bytes) -> Samples:
    """A scrape as ``{sample name: [(labels, value), ...]}``, to ask :func:`metric_value` many
    questions without parsing it each time."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _sum(samples: Samples, name: str, **labels: str) -> float | None:
    found = [v for got, v in samples.get(name, [])
             if all(got.get(k) == want for k, want in labels.items())]
    return sum(found) if found else None


def _rebuild(samples: Samples, metric: str, provider: str) -> Histogram | None:
    rows = [(float(labels["le"]), v) for labels, v in samples.get(f"{metric}_bucket", [])
            if labels.get("provider") == provider]
    if not rows:
        return None
    finite = sorted(r for r in rows if r[0] != float("inf"))
    return Histogram(bounds=tuple(b for b, _ in finite), counts=tuple(int(c) for _, c in finite),
                     sum=_sum(samples, f"{metric}_sum", provider=provider) or 0.0,
                     count=int(_sum(samples, f"{metric}_count", provider=provider) or 0))


_SIMPLE = {
    "jobs": ("wanmock_jobs", ("provider", "state")),
    "submitted": ("wanmock_jobs_submitted_total", ("provider",)),
    "finished": ("wanmock_jobs_finished_total", ("provider", "outcome")),
    "rate_limited": ("wanmock_rate_limited_total", ("provider",)),
    "violations": ("wanmock_client_violations_total", ("provider", "kind")),
    "faults": ("wanmock_faults_injected_total", ("provider", "kind", "phase")),
    "queue_keys": ("wanmock_queue_keys", ("provider",)),
    "requests": ("wanmock_requests_total", ("provider", "endpoint", "status")),
}


def metric_value(exposition: str | bytes | Samples, name: str) -> float | None:
    """The value a Prometheus scrape gives for the page's ``data-metric`` ``name``.

    ``None`` when the scrape has no such series, or the name is not a metric (``clock.now``).
    Means and quantiles are recomputed from the scraped buckets, as Prometheus would.

    >>> metric_value(b'wanmock_jobs{provider="therouter",state="queued"} 2.0\\n',
    ...              "jobs.therouter.queued")
    2.0
    """
    samples = exposition if isinstance(exposition, dict) else parse_scrape(exposition)
    head, *parts = name.split(".")
    if head in _SIMPLE:
        metric, labels = _SIMPLE[head]
        if len(parts) > len(labels):
            return None
        return _sum(samples, metric, **dict(zip(labels, parts, strict=False)))
    if head == "journal" and parts == ["dropped"]:
        return _sum(samples, "wanmock_journal_dropped_total")
    if head == "queue" and len(parts) == 3 and parts[2] in ("depth", "busy"):
        metric = "wanmock_queue_depth" if parts[2] == "depth" else "wanmock_busy_slots"
        return _sum(samples, metric, provider=parts[0], key=parts[1])
    if head == "worst" and len(parts) == 3:
        kind = {} if parts[2] == "total" else {"kind": parts[2]}
        return _sum(samples, "wanmock_worst_client_violations", provider=parts[0], key=parts[1],
                    **kind)
    if head == "hist" and len(parts) >= 3 and parts[1] in HISTOGRAMS:
        provider, hist, stat = parts[0], HISTOGRAMS[parts[1]], parts[2]
        if stat in ("count", "sum") and len(parts) == 3:
            return _sum(samples, f"{hist}_{stat}", provider=provider)
        h = _rebuild(samples, hist, provider)
        if h is None:
            return None
        if stat == "mean":
            return h.mean
        if stat in QUANTILES:
            return h.quantile(QUANTILES[stat])
        if stat == "bucket" and len(parts) == 4 and parts[3].isdigit():
            buckets = h.per_bucket
            return buckets[int(parts[3])] if int(parts[3]) < len(buckets) else None
    return None


def metric_names(data: Mapping[str, Any]) -> Iterable[str]:
    """The ``data-metric`` names of ``data`` that a scrape must also answer (all but the clock)."""
    return (name for name in flat_numbers(data) if name != "clock.now")
