"""The Prometheus exposition of a known snapshot, line by line, and its bounded labels."""

from __future__ import annotations

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from wanmock.server.web.metrics import (
    INTERVAL_BUCKETS,
    ClientViolations,
    Histogram,
    MetricsCollector,
    MetricsSnapshot,
    ProviderMetrics,
    QueueLoad,
    endpoint_label,
    render,
)

from .canned import CAREFUL, CARELESS, snapshot

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def samples(exposition: bytes) -> set[Sample]:
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for family in text_string_to_metric_families(exposition.decode())
            for s in family.samples}


def lab(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_exact_lines_of_a_known_snapshot() -> None:
    text = render(snapshot(moved=True)).decode()
    for line in [
        '# TYPE wanmock_requests_total counter',
        'wanmock_requests_total{endpoint="status",provider="therouter",status="200"} 40.0',
        'wanmock_requests_total{endpoint="status",provider="therouter",status="429"} 3.0',
        'wanmock_jobs{provider="therouter",state="succeeded"} 2.0',
        'wanmock_jobs{provider="therouter",state="queued"} 0.0',
        'wanmock_jobs_submitted_total{provider="runcomfy"} 1.0',
        'wanmock_jobs_finished_total{outcome="succeeded",provider="therouter"} 2.0',
        'wanmock_faults_injected_total{kind="http-503",phase="running",provider="therouter"} 2.0',
        'wanmock_rate_limited_total{provider="therouter"} 3.0',
        'wanmock_client_violations_total{kind="poll-after-terminal",provider="therouter"} 5.0',
        'wanmock_client_violations_total{kind="poll-after-cancel",provider="therouter"} 0.0',
        'wanmock_journal_dropped_total 7.0',
        '# TYPE wanmock_polls_per_job histogram',
        'wanmock_polls_per_job_bucket{le="8.0",provider="therouter"} 0.0',
        'wanmock_polls_per_job_bucket{le="13.0",provider="therouter"} 1.0',
        'wanmock_polls_per_job_bucket{le="+Inf",provider="therouter"} 2.0',
        'wanmock_polls_per_job_sum{provider="therouter"} 23.0',
        'wanmock_notice_lag_seconds_count{provider="therouter"} 2.0',
        'wanmock_submit_to_download_seconds_bucket{le="120.0",provider="therouter"} 1.0',
        'wanmock_submit_to_download_seconds_bucket{le="90.0",provider="therouter"} 0.0',
        f'wanmock_queue_depth{{key="{CAREFUL}",provider="runcomfy"}} 1.0',
        f'wanmock_busy_slots{{key="{CARELESS}",provider="therouter"}} 1.0',
        'wanmock_queue_keys{provider="therouter"} 1.0',
        f'wanmock_worst_client_violations{{key="{CARELESS}",kind="poll-after-terminal",'
        'provider="therouter"} 5.0',
    ]:
        assert line in text.splitlines(), f"missing line {line!r}"


def test_parsed_scrape_has_exactly_the_known_series() -> None:
    got = samples(render(snapshot(moved=False)))
    requests = {s for s in got if s[0] == "wanmock_requests_total"}
    assert requests == {
        ("wanmock_requests_total", lab(provider="therouter", endpoint=e, status=c), n)
        for e, c, n in [("submit", "202", 3), ("submit", "502", 1), ("status", "200", 24),
                        ("status", "503", 2), ("status", "429", 3), ("download", "200", 0)]
    } | {("wanmock_requests_total", lab(provider="runcomfy", endpoint=e, status="200"), n)
         for e, n in [("submit", 1), ("status", 4), ("result", 1)]}
    interval = {(s[1], s[2]) for s in got if s[0] == "wanmock_poll_interval_seconds_bucket"
                and dict(s[1])["provider"] == "therouter"}
    # 2 polls 0.4 s apart, 10 at 1 s, 6 at 2.5 s: cumulative per bucket
    want = {"0.5": 2, "1.0": 12, "2.0": 12, "5.0": 18, "+Inf": 18}
    for le, n in want.items():
        assert (lab(le=le, provider="therouter"), n) in interval
    assert ("wanmock_poll_interval_seconds_sum", lab(provider="therouter"), 25.8) in {
        (a, b, round(c, 6)) for a, b, c in got}
    # no job ids, no raw keys, no label outside the documented set
    labels = {name for _, ls, _ in got for name, _ in ls}
    assert labels == {"provider", "endpoint", "status", "state", "outcome", "kind", "phase",
                      "key", "le"}
    values = {v for _, ls, _ in got for _, v in ls}
    assert not any(v.startswith(("img_", "careless")) for v in values)


def test_a_different_snapshot_scrapes_differently() -> None:
    """The exposition follows the numbers (a known-bad input for the line checks above)."""
    before, after = samples(render(snapshot(moved=False))), samples(render(snapshot(moved=True)))
    changed = {s[:2] for s in before ^ after}
    assert ("wanmock_jobs", lab(provider="therouter", state="queued")) in changed
    assert ("wanmock_journal_dropped_total", ()) not in changed


def test_per_key_labels_are_bounded_and_the_rest_is_summed_as_other() -> None:
    loads = tuple(QueueLoad(provider="therouter", key=f"{i:016x}", depth=i % 7, busy=i % 3)
                  for i in range(1000))
    clients = tuple(ClientViolations(provider="therouter", key=f"{i:016x}",
                                     counts={"poll-after-terminal": i}) for i in range(1000))
    snap = MetricsSnapshot(providers={"therouter": ProviderMetrics()}, queues=loads,
                           clients=clients)
    got = samples(render(snap, max_keys=5))
    depth = {dict(ls)["key"]: v for name, ls, v in got if name == "wanmock_queue_depth"}
    assert len(depth) == 6 and "other" in depth
    assert sum(depth.values()) == sum(q.depth for q in loads)
    busy = {dict(ls)["key"]: v for name, ls, v in got if name == "wanmock_busy_slots"}
    assert busy.keys() == depth.keys() and sum(busy.values()) == sum(q.busy for q in loads)
    worst = {dict(ls)["key"]: v for name, ls, v in got
             if name == "wanmock_worst_client_violations"}
    assert worst == {f"{i:016x}": i for i in range(995, 1000)}
    assert ("wanmock_queue_keys", lab(provider="therouter"), 1000) in got
    top = sorted(loads, key=lambda q: -(q.depth + q.busy))[0]
    assert depth[top.key] == top.depth


def test_raw_keys_and_unknown_words_never_become_labels() -> None:
    with pytest.raises(ValueError, match="raw keys never become labels"):
        QueueLoad(provider="therouter", key="sk-live-123", depth=1, busy=0)
    with pytest.raises(ValueError, match="poll-after-cancel"):
        ProviderMetrics(violations={"polled-too-fast": 1})
    with pytest.raises(ValueError, match="requests endpoint"):
        ProviderMetrics(requests={("/v1/jobs/abc", 200): 1})
    with pytest.raises(ValueError, match="jobs_by_state"):
        ProviderMetrics(jobs_by_state={"done": 1})
    with pytest.raises(ValueError, match="faults phase"):
        ProviderMetrics(faults={("http-503", "later"): 1})
    with pytest.raises(ValueError, match="whole number"):
        ProviderMetrics(jobs_submitted=-1)
    with pytest.raises(ValueError, match="status"):
        ProviderMetrics(requests={("submit", 999): 1})
    assert endpoint_label("status") == "status"
    assert endpoint_label("route-not-found") == endpoint_label(None) == "other"


def test_histogram_of_values_and_its_checks() -> None:
    h = Histogram.of([0.4, 1.0, 1.0, 2.5, 400.0], bounds=INTERVAL_BUCKETS)
    assert h.counts[:4] == (1, 3, 3, 4) and h.counts[-1] == 4
    assert (h.count, h.sum, h.per_bucket[-1]) == (5, 404.9, 1)
    assert h.quantile(1.0) == 300.0  # in the +Inf bucket: the last finite bound
    assert h.quantile(0.5) == pytest.approx(0.5 + 0.5 * (2.5 - 1) / 2)
    assert Histogram.empty((1.0,)).quantile(0.5) is None and Histogram.empty((1.0,)).mean is None
    with pytest.raises(ValueError, match="cumulative"):
        Histogram(bounds=(1.0, 2.0), counts=(3, 2), count=3)
    with pytest.raises(ValueError, match="cumulative"):
        Histogram(bounds=(1.0,), counts=(3,), count=2)
    with pytest.raises(ValueError, match="increasing"):
        Histogram(bounds=(2.0, 1.0), counts=(0, 0))
    with pytest.raises(ValueError, match="2 bounds but 1 counts"):
        Histogram(bounds=(1.0, 2.0), counts=(0,))


def test_collector_reads_a_fresh_snapshot_per_scrape_on_a_private_registry() -> None:
    submitted = iter(range(1, 100))

    def current() -> MetricsSnapshot:
        return MetricsSnapshot(providers={"therouter": ProviderMetrics(
            jobs_submitted=next(submitted))})

    registry = prometheus_client.CollectorRegistry()
    registry.register(MetricsCollector(current))
    first = registry.get_sample_value("wanmock_jobs_submitted_total", {"provider": "therouter"})
    second = registry.get_sample_value("wanmock_jobs_submitted_total", {"provider": "therouter"})
    assert (first, second) == (1.0, 2.0)
    render(snapshot())
    global_names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("wanmock_") for name in global_names)
