"""What the server observes, as one :class:`~wanmock.server.web.metrics.MetricsSnapshot`.

Built at scrape time from the simulation state alone — its census (jobs by phase, queues, jobs
submitted and finished) and its journal's tallies (requests, faults, violations, histograms) —
so with several workers sharing a state every worker answers the whole fleet's numbers. The
work per scrape does not grow with the number of jobs or journal entries: the census answers in
O(log n) (``state/census.py``), the tallies are counters kept as requests are recorded, and the
worst clients are kept ranked as violations happen.

>>> from wanmock.server import FakeClock, create_app
>>> from wanmock.server.state.memory import at_once
>>> rt = create_app(clock=FakeClock()).state.wanmock
>>> snap, now = at_once(snapshot(rt))
>>> sorted(snap.providers), snap.providers["therouter"].jobs_submitted
(['dashscope', 'runcomfy', 'therouter'], 0)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..clock import FakeClock
from ..journal import Histogram as Tallied
from ..journal import Journal
from ..presets import PRESETS
from ..state import Census
from ..vocab import Operation
from .dashboard import ClockInfo, PresetInfo, QueueInfo, dashboard_data
from .metrics import (
    DOWNLOAD_BUCKETS,
    FAULT_KINDS,
    FAULT_PHASES,
    INTERVAL_BUCKETS,
    LAG_BUCKETS,
    OUTCOMES,
    POLLS_BUCKETS,
    VIOLATION_KINDS,
    ClientViolations,
    Histogram,
    JobRef,
    MetricsSnapshot,
    ProviderMetrics,
    QueueLoad,
    endpoint_label,
)
from .runtime import Runtime

__all__ = ["RECENT_JOBS", "dashboard_document", "snapshot"]

#: Jobs offered for the drill-down on the dashboard (the most recently asked about).
RECENT_JOBS = 12


#: Histogram name -> bucket bounds, as :class:`ProviderMetrics` names its fields.
_BOUNDS = {"polls_per_job": POLLS_BUCKETS, "poll_interval": INTERVAL_BUCKETS,
           "notice_lag": LAG_BUCKETS, "submit_to_download": DOWNLOAD_BUCKETS}


def _histogram(tallied: Tallied | None, bounds: tuple[float, ...]) -> Histogram:
    if tallied is None:
        return Histogram.empty(bounds)
    running, cumulative = 0, []
    for n in tallied.counts[:-1]:
        running += n
        cumulative.append(running)
    return Histogram(bounds=tallied.bounds, counts=tuple(cumulative), sum=tallied.total,
                     count=tallied.count)


def _providers(rt: Runtime, census: Census, journal: Journal) -> dict[str, ProviderMetrics]:
    tally = journal.tally
    names = sorted(rt.dialects)
    requests: dict[str, Counter[tuple[str, int]]] = {name: Counter() for name in names}
    limited: Counter[str] = Counter()
    submits: Counter[str] = Counter()
    for (provider, operation, status), n in tally.requests.items():
        if provider not in requests or not 100 <= status <= 599:
            continue  # not a provider's request; or a client that left before its answer
        requests[provider][(endpoint_label(operation), status)] += n
        if status == 429:
            limited[provider] += n
        if operation == Operation.SUBMIT and status < 300:
            submits[provider] += n
    faults: dict[str, dict[tuple[str, str], int]] = {name: {} for name in names}
    for (provider, kind, phase), n in tally.faults.items():
        if provider in faults and kind in FAULT_KINDS and phase in FAULT_PHASES:
            faults[provider][(kind, phase)] = n
    violations: dict[str, dict[str, int]] = {name: {} for name in names}
    for (provider, kind), n in tally.violations.items():
        if provider in violations and kind in VIOLATION_KINDS:
            violations[provider][kind] = n
    # The state's own counts where it keeps them; else what the clients were shown.
    submitted = census.submitted if census.submitted is not None else submits
    finished: dict[str, dict[str, int]] = {name: {} for name in names}
    if census.finished is not None:
        for provider, outcomes in census.finished.items():
            if provider in finished:
                finished[provider] = {str(o): n for o, n in outcomes.items() if n}
    else:
        for (provider, outcome), n in tally.finished.items():
            if provider in finished and outcome in OUTCOMES:
                finished[provider][outcome] = n
    out = {}
    for name in names:
        jobs = census.jobs.get(name, {})
        hist = {h: _histogram(tally.histograms.get((name, h)), bounds)
                for h, bounds in _BOUNDS.items()}
        out[name] = ProviderMetrics(
            requests=dict(requests[name]),
            jobs_by_state={str(phase): n for phase, n in jobs.items()},
            jobs_submitted=submitted.get(name, 0),
            jobs_finished=finished[name],
            faults=faults[name],
            rate_limited=limited[name],
            violations=violations[name],
            **hist)
    return out


def _queues(census: Census, providers: set[str]) -> tuple[QueueLoad, ...]:
    loads = []
    for name, (depth, busy) in census.queues.items():
        provider, _, key = name.partition(":")
        if provider in providers and (depth or busy):
            loads.append(QueueLoad(provider=provider, key=key or "shared", depth=depth,
                                   busy=busy))
    return tuple(loads)


async def snapshot(rt: Runtime) -> tuple[MetricsSnapshot, float]:
    """Every number of the metrics and the dashboard now, and the simulated ``now`` it is of."""
    now = rt.clock.now()
    census = await rt.state.census(now)
    journal = await rt.state.journal()
    providers = _providers(rt, census, journal)
    tally = journal.tally
    clients = tuple(ClientViolations(provider=provider, key=key,
                                     counts=dict(tally.clients[(provider, key)]))
                    for provider, key in tally.worst if provider in providers)
    recent = tuple(JobRef(s.provider, s.job_id) for s in journal.recent(RECENT_JOBS)
                   if s.provider in providers)
    snap = MetricsSnapshot(providers=providers, journal_dropped=journal.dropped_entries,
                           queues=_queues(census, set(providers)), clients=clients,
                           recent_jobs=recent)
    return snap, now


async def dashboard_document(rt: Runtime) -> dict[str, Any]:
    """The ``dashboard.json`` document now (``schemas/admin/dashboard.json``)."""
    await rt.sync_preset()  # the preset another worker sharing the state may have switched to
    snap, now = await snapshot(rt)
    fake = isinstance(rt.clock, FakeClock)
    lifecycle = rt.config.lifecycle
    return dashboard_data(
        snap,
        clock=ClockInfo(fake=fake, now=now, scale=None if fake else rt.config.server.time_scale),
        preset=PresetInfo(current=rt.config.preset or None, available=tuple(PRESETS)),
        queues=QueueInfo(concurrency=lifecycle.concurrency, scope=str(lifecycle.queue_scope)))
