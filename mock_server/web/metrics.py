"""Prometheus metrics: a frozen :class:`MetricsSnapshot` of plain values, exported by a collector.

Whoever holds the state (the shared-state store) builds a snapshot at scrape time; this module
only turns it into the Prometheus text format, through ``prometheus_client`` on a private
registry (never the process-global one, so two apps in one process never mix their numbers).

Labels are bounded by construction: ``provider``, ``endpoint``, ``status``, ``state``,
``outcome``, ``kind`` and ``phase`` come from closed vocabularies checked when a snapshot is
built; never a job id or an API key. Per-key series (queue depth, busy slots, worst clients) carry
the key's *hash* and are folded to the ``max_keys`` largest, the rest summed under
``key="other"``, so the number of series stays bounded with 100k keys.

>>> snap = MetricsSnapshot(providers={"therouter": ProviderMetrics(jobs_submitted=3)})
>>> b"wanmock_jobs_submitted_total{provider=\\"therouter\\"} 3.0" in render(snap)
True
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..journal import BUCKETS, IGNORED_RETRY_AFTER, POLL_AFTER_TERMINAL, RESULT_BEFORE_SUCCESS
from ..vocab import FaultKind, Operation, Phase

__all__ = [
    "DOWNLOAD_BUCKETS",
    "ENDPOINTS",
    "FAULT_KINDS",
    "FAULT_PHASES",
    "INTERVAL_BUCKETS",
    "LAG_BUCKETS",
    "MAX_KEY_LABELS",
    "OUTCOMES",
    "POLLS_BUCKETS",
    "STATES",
    "VIOLATION_KINDS",
    "ClientViolations",
    "Histogram",
    "JobRef",
    "MetricsCollector",
    "MetricsSnapshot",
    "ProviderMetrics",
    "QueueLoad",
    "endpoint_label",
    "fold_keys",
    "render",
]

POLL_AFTER_CANCEL = "poll-after-cancel"
#: Client violations counted per provider (the journal's flags plus polls after a cancel).
VIOLATION_KINDS = (POLL_AFTER_TERMINAL, IGNORED_RETRY_AFTER, RESULT_BEFORE_SUCCESS,
                   POLL_AFTER_CANCEL)
#: ``endpoint`` label values: the generic operations, and ``other`` for anything else answered.
ENDPOINTS = (*(op.value for op in Operation), "other")
STATES = tuple(phase.value for phase in Phase)
OUTCOMES = tuple(phase.value for phase in Phase if phase.terminal)
FAULT_KINDS = tuple(kind.value for kind in FaultKind if kind is not FaultKind.PASS)
#: ``phase`` label of an injected fault: the phase of the job addressed, ``none`` on a submit.
FAULT_PHASES = ("none", *STATES)
#: Default bound on per-key label values of one metric (the rest are summed as ``other``).
MAX_KEY_LABELS = 20

# Bucket upper bounds (the +Inf bucket is implicit): the journal's, where they are counted.
POLLS_BUCKETS = BUCKETS["polls_per_job"]
INTERVAL_BUCKETS = BUCKETS["poll_interval"]
LAG_BUCKETS = BUCKETS["notice_lag"]
DOWNLOAD_BUCKETS = BUCKETS["submit_to_download"]

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
#: A key label is a hex hash (``runtime.owner_of``) or ``shared`` (one queue per provider).
_KEY = re.compile(r"[0-9a-f]{8,64}|shared")

K = TypeVar("K")
#: ``le`` label text as Prometheus writes it (the library's function carries no annotations).
_le: Callable[[float], str] = floatToGoString


def _check(what: str, value: object, valid: Sequence[object]) -> None:
    if value not in valid:
        raise ValueError(f"{what}: {value!r} is not one of {', '.join(map(str, valid))}")


def _check_counts(what: str, counts: Mapping[K, int]) -> None:
    for label, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{what}[{label!r}] must be a whole number >= 0; got {n!r}")


def endpoint_label(operation: str | None) -> str:
    """The ``endpoint`` label of a journal operation: the operation, or ``other``."""
    return operation if operation in ENDPOINTS else "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class Histogram:
    """A Prometheus histogram's state: finite upper bounds, cumulative counts, sum and count.

    ``counts[i]`` observations were ``<= bounds[i]``; ``count`` is the +Inf bucket.

    >>> h = Histogram.of([1, 4, 4, 100], bounds=(2.0, 5.0))
    >>> h.counts, h.count, h.sum, h.quantile(0.5)
    ((1, 3), 4, 109.0, 3.5)
    """

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if len(self.bounds) != len(self.counts):
            raise ValueError(f"histogram: {len(self.bounds)} bounds but {len(self.counts)} counts")
        if any(not math.isfinite(b) for b in self.bounds) or any(
                a >= b for a, b in itertools.pairwise(self.bounds)):
            raise ValueError(f"histogram bounds must be finite and increasing; got {self.bounds}")
        cumulative = (*self.counts, self.count)
        if any(c < 0 for c in cumulative) or any(
                a > b for a, b in itertools.pairwise(cumulative)):
            raise ValueError(f"histogram counts must be cumulative (non-decreasing, <= count); "
                             f"got {self.counts} with count {self.count}")

    @classmethod
    def empty(cls, bounds: Sequence[float]) -> Histogram:
        """No observations yet."""
        return cls(bounds=tuple(map(float, bounds)), counts=(0,) * len(bounds))

    @classmethod
    def of(cls, values: Iterable[float], *, bounds: Sequence[float]) -> Histogram:
        """The histogram of ``values`` (for tests and for producers that keep raw samples)."""
        edges = tuple(map(float, bounds))
        per_bucket = [0] * (len(edges) + 1)
        total, n = 0.0, 0
        for value in values:
            per_bucket[bisect.bisect_left(edges, value)] += 1
            total += value
            n += 1
        running, cumulative = 0, []
        for c in per_bucket[:-1]:
            running += c
            cumulative.append(running)
        return cls(bounds=edges, counts=tuple(cumulative), sum=total, count=n)

    @property
    def per_bucket(self) -> tuple[int, ...]:
        """Observations in each bucket (not cumulative), the +Inf bucket last."""
        cumulative = (0, *self.counts, self.count)
        return tuple(b - a for a, b in itertools.pairwise(cumulative))

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """Prometheus' ``histogram_quantile``: linear within the bucket; ``None`` when empty.

        The first bucket starts at 0; a rank in the +Inf bucket answers the last finite bound.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1]; got {q}")
        if not self.count:
            return None
        rank = q * self.count
        i = bisect.bisect_left(self.counts, rank)
        if i == len(self.bounds):
            return self.bounds[-1] if self.bounds else None
        if i == 0 and self.bounds[0] <= 0:
            return self.bounds[0]
        lower = self.bounds[i - 1] if i else 0.0
        below = self.counts[i - 1] if i else 0
        inside = self.counts[i] - below
        if inside == 0:
            return self.bounds[i]
        return lower + (self.bounds[i] - lower) * (rank - below) / inside


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderMetrics:
    """Every number of one provider. Counters count since the last reset."""

    #: Requests answered, by ``(endpoint, status)``; endpoints from :data:`ENDPOINTS`.
    requests: Mapping[tuple[str, int], int] = field(default_factory=dict)
    #: Jobs in the store by current state (computed at snapshot time); states from :data:`STATES`.
    jobs_by_state: Mapping[str, int] = field(default_factory=dict)
    jobs_submitted: int = 0
    #: Jobs that reached a terminal state, by outcome (:data:`OUTCOMES`).
    jobs_finished: Mapping[str, int] = field(default_factory=dict)
    #: Injected faults by ``(kind, phase)``: a :class:`FaultKind` value and the job's phase
    #: (``none`` when no job was addressed).
    faults: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: 429 answers issued (rate limit or injected).
    rate_limited: int = 0
    #: Client violations by kind (:data:`VIOLATION_KINDS`).
    violations: Mapping[str, int] = field(default_factory=dict)
    #: Status polls per finished job (poll amplification).
    polls_per_job: Histogram = field(default_factory=lambda: Histogram.empty(POLLS_BUCKETS))
    #: Simulated seconds between consecutive polls of one job.
    poll_interval: Histogram = field(default_factory=lambda: Histogram.empty(INTERVAL_BUCKETS))
    #: Simulated seconds from a job reaching a terminal state to the first poll that saw it.
    notice_lag: Histogram = field(default_factory=lambda: Histogram.empty(LAG_BUCKETS))
    #: Simulated seconds from submit to the first image download.
    submit_to_download: Histogram = field(
        default_factory=lambda: Histogram.empty(DOWNLOAD_BUCKETS))

    def __post_init__(self) -> None:
        for endpoint, status in self.requests:
            _check("requests endpoint", endpoint, ENDPOINTS)
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError(f"requests status must be an HTTP status 100-599; got {status!r}")
        for state in self.jobs_by_state:
            _check("jobs_by_state", state, STATES)
        for outcome in self.jobs_finished:
            _check("jobs_finished", outcome, OUTCOMES)
        for kind, phase in self.faults:
            _check("faults kind", kind, FAULT_KINDS)
            _check("faults phase", phase, FAULT_PHASES)
        for kind in self.violations:
            _check("violations", kind, VIOLATION_KINDS)
        for name in ("requests", "jobs_by_state", "jobs_finished", "faults", "violations"):
            _check_counts(name, getattr(self, name))
        _check_counts("counters", {"jobs_submitted": self.jobs_submitted,
                                   "rate_limited": self.rate_limited})


def _check_key(provider: str, key: str) -> None:
    if not _NAME.fullmatch(provider):
        raise ValueError(f"provider {provider!r} is not a provider name")
    if not _KEY.fullmatch(key):
        raise ValueError(f"key {key!r} must be a hex hash of an API key (8-64 hex digits) or "
                         f"'shared'; raw keys never become labels")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLoad:
    """One scheduler queue now: its provider, the hashed key it serves, waiting and running."""

    provider: str
    key: str
    depth: int
    busy: int

    def __post_init__(self) -> None:
        _check_key(self.provider, self.key)
        _check_counts("queue", {"depth": self.depth, "busy": self.busy})

    @property
    def weight(self) -> int:
        return self.depth + self.busy


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientViolations:
    """One client's (hashed key's) violations by kind."""

    provider: str
    key: str
    counts: Mapping[str, int]

    def __post_init__(self) -> None:
        _check_key(self.provider, self.key)
        for kind in self.counts:
            _check("client violations", kind, VIOLATION_KINDS)
        _check_counts("client violations", self.counts)

    @property
    def weight(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job worth a look on the dashboard (its drill-down reads the journal)."""

    provider: str
    job_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSnapshot:
    """Every number the metrics endpoint and the dashboard show, at one instant."""

    providers: Mapping[str, ProviderMetrics]
    #: Journal entries pushed out of the bounded ring buffer since the last reset.
    journal_dropped: int = 0
    #: Queues with work (any length: exports fold them to the largest ``max_keys``).
    queues: tuple[QueueLoad, ...] = ()
    #: Clients with violations (any length: folded like ``queues``).
    clients: tuple[ClientViolations, ...] = ()
    #: A few recent jobs for the dashboard's drill-down (never exported as labels).
    recent_jobs: tuple[JobRef, ...] = ()

    def __post_init__(self) -> None:
        for name in self.providers:
            if not _NAME.fullmatch(name):
                raise ValueError(f"provider {name!r} is not a provider name")
        _check_counts("journal", {"dropped": self.journal_dropped})


L = TypeVar("L", QueueLoad, ClientViolations)


def fold_keys(items: Iterable[L], limit: int, *,
              rest: bool = True) -> tuple[list[L], dict[str, list[L]]]:
    """The ``limit`` heaviest items, heaviest first, and the rest grouped by provider (to be
    summed as ``other``).

    One pass with a heap of ``limit`` (100k keys cost milliseconds, not a sort). Among equal
    weights the earlier item wins the last places, and the chosen ones are listed by
    (-weight, provider, key): a producer that lists keys in a stable order gets stable labels."""
    everything = items if isinstance(items, tuple | list) else list(items)
    top = heapq.nlargest(limit, everything, key=_weight)
    top.sort(key=lambda i: (-i.weight, i.provider, i.key))
    chosen = set(map(id, top))
    others: dict[str, list[L]] = {}
    if rest and len(everything) > len(top):
        for item in everything:
            if id(item) not in chosen:
                others.setdefault(item.provider, []).append(item)
    return top, others


def _weight(item: QueueLoad | ClientViolations) -> int:
    return item.weight


def _families(snap: MetricsSnapshot, max_keys: int) -> Iterator[Metric]:
    providers = sorted(snap.providers.items())
    requests = CounterMetricFamily("wanmock_requests", "Requests answered, by endpoint and status",
                                   labels=["provider", "endpoint", "status"])
    jobs = GaugeMetricFamily("wanmock_jobs", "Jobs in the store by current state",
                             labels=["provider", "state"])
    submitted = CounterMetricFamily("wanmock_jobs_submitted", "Jobs accepted",
                                    labels=["provider"])
    finished = CounterMetricFamily("wanmock_jobs_finished", "Jobs that reached a terminal state",
                                   labels=["provider", "outcome"])
    faults = CounterMetricFamily("wanmock_faults_injected",
                                 "Faults injected, by kind and the phase of the job addressed",
                                 labels=["provider", "kind", "phase"])
    limited = CounterMetricFamily("wanmock_rate_limited", "429 answers issued",
                                  labels=["provider"])
    violations = CounterMetricFamily("wanmock_client_violations",
                                     "Client behaviour violations, by kind",
                                     labels=["provider", "kind"])
    histograms = {
        "polls_per_job": HistogramMetricFamily(
            "wanmock_polls_per_job", "Status polls per finished job (poll amplification)",
            labels=["provider"]),
        "poll_interval": HistogramMetricFamily(
            "wanmock_poll_interval_seconds",
            "Simulated seconds between consecutive polls of a job", labels=["provider"]),
        "notice_lag": HistogramMetricFamily(
            "wanmock_notice_lag_seconds",
            "Simulated seconds from a job finishing to the first poll that saw it",
            labels=["provider"]),
        "submit_to_download": HistogramMetricFamily(
            "wanmock_submit_to_download_seconds",
            "Simulated seconds from submit to the first image download", labels=["provider"]),
    }
    for name, p in providers:
        for (endpoint, status), n in sorted(p.requests.items()):
            requests.add_metric([name, endpoint, str(status)], n)
        for state in STATES:
            jobs.add_metric([name, state], p.jobs_by_state.get(state, 0))
        submitted.add_metric([name], p.jobs_submitted)
        for outcome in OUTCOMES:
            finished.add_metric([name, outcome], p.jobs_finished.get(outcome, 0))
        for (kind, phase), n in sorted(p.faults.items()):
            faults.add_metric([name, kind, phase], n)
        limited.add_metric([name], p.rate_limited)
        for kind in VIOLATION_KINDS:
            violations.add_metric([name, kind], p.violations.get(kind, 0))
        for attr, family in histograms.items():
            h: Histogram = getattr(p, attr)
            buckets = [(_le(b), c) for b, c in zip(h.bounds, h.counts, strict=True)]
            family.add_metric([name], [*buckets, ("+Inf", h.count)], h.sum)
    yield from (requests, jobs, submitted, finished, faults, limited, violations)
    yield from histograms.values()

    dropped = CounterMetricFamily("wanmock_journal_dropped",
                                  "Journal entries pushed out of the bounded ring buffer")
    dropped.add_metric([], snap.journal_dropped)
    yield dropped

    keys = GaugeMetricFamily("wanmock_queue_keys", "Queues holding waiting or running jobs",
                             labels=["provider"])
    depth = GaugeMetricFamily("wanmock_queue_depth",
                              f"Jobs waiting per queue (hashed key; the {max_keys} longest, "
                              "the rest summed as key=other)", labels=["provider", "key"])
    busy = GaugeMetricFamily("wanmock_busy_slots", "Running jobs per queue (as queue_depth)",
                             labels=["provider", "key"])
    counted: dict[str, int] = {}
    for load in snap.queues:
        counted[load.provider] = counted.get(load.provider, 0) + 1
    for name, _ in providers:
        keys.add_metric([name], counted.get(name, 0))
    top, rest = fold_keys(snap.queues, max_keys)
    for load in top:
        depth.add_metric([load.provider, load.key], load.depth)
        busy.add_metric([load.provider, load.key], load.busy)
    for provider, loads in sorted(rest.items()):
        depth.add_metric([provider, "other"], sum(q.depth for q in loads))
        busy.add_metric([provider, "other"], sum(q.busy for q in loads))
    yield from (keys, depth, busy)

    worst = GaugeMetricFamily("wanmock_worst_client_violations",
                              f"Violations of the {max_keys} worst clients (hashed key), by kind",
                              labels=["provider", "key", "kind"])
    top_clients, _ = fold_keys(snap.clients, max_keys, rest=False)
    for client in top_clients:
        for kind, n in sorted(client.counts.items()):
            worst.add_metric([client.provider, client.key, kind], n)
    yield worst


class MetricsCollector(Collector):
    """A ``prometheus_client`` collector reading a fresh snapshot at every scrape.

    ``snapshot`` is called once per :meth:`collect`; it should be cheap and bounded (counters
    kept as they happen, not a scan over every job).
    """

    def __init__(self, snapshot: Callable[[], MetricsSnapshot], *,
                 max_keys: int = MAX_KEY_LABELS) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._snapshot = snapshot
        self.max_keys = max_keys

    def collect(self) -> Iterator[Metric]:
        yield from _families(self._snapshot(), self.max_keys)


def render(snapshot: MetricsSnapshot, *, max_keys: int = MAX_KEY_LABELS) -> bytes:
    """The Prometheus text exposition of ``snapshot`` (``text/plain; version=0.0.4``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(lambda: snapshot, max_keys=max_keys))
    return generate_latest(registry)
