"""``dashboard.json``: produced from a snapshot, valid against its schema, one truth with the
metrics scrape; and the page is one self-contained file."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from wanmock import schemas
from wanmock.server.web.dashboard import (
    ClockInfo,
    PresetInfo,
    QueueInfo,
    dashboard_data,
    flat_numbers,
    metric_names,
    metric_value,
    page,
    parse_scrape,
)
from wanmock.server.web.metrics import MetricsSnapshot, ProviderMetrics, QueueLoad, render

from .browser import mismatches
from .canned import CARELESS, document, snapshot


@pytest.mark.parametrize("moved", [False, True], ids=["before", "after"])
def test_document_matches_its_schema(moved: bool) -> None:
    schemas.validate("admin/dashboard", document(moved=moved))


def test_an_empty_server_is_a_valid_document_too() -> None:
    data = dashboard_data(MetricsSnapshot(providers={}), clock=ClockInfo(fake=False, now=5.0,
                                                                          scale=100.0),
                          preset=PresetInfo(current=None, available=()),
                          queues=QueueInfo(concurrency=1, scope="provider"))
    schemas.validate("admin/dashboard", data)
    assert flat_numbers(data) == {"clock.now": 5.0, "journal.dropped": 0}


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(document())
    target = data
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "field"), [
    (["clock"], KeyError, "clock"),
    (["worst_clients", 0, "key"], "sk-live-raw-key", "worst_clients.0.key"),
    (["providers", "therouter", "jobs", "queued"], -1, "providers.therouter.jobs.queued"),
    (["providers", "therouter", "violations"], {"too-fast": 1}, "providers.therouter.violations"),
    (["queues", "scope"], "global", "queues.scope"),
], ids=["no-clock", "raw-key", "negative", "unknown-violation", "bad-scope"])
def test_schema_rejects_broken_documents(path: list[Any], value: Any, field: str) -> None:
    issues = schemas.check("admin/dashboard", _broken(path, value))
    assert issues and issues[0].field.startswith(field), issues


@pytest.mark.parametrize("moved", [False, True], ids=["before", "after"])
def test_every_dashboard_number_is_what_the_metrics_scrape_says(moved: bool) -> None:
    snap = snapshot(moved=moved)
    data = document(moved=moved)
    scrape = parse_scrape(render(snap))
    flat = flat_numbers(data)
    names = list(metric_names(data))
    assert len(names) == len(flat) - 1 > 80
    for name in names:
        assert metric_value(scrape, name) == pytest.approx(flat[name]), name
    assert metric_value(scrape, "clock.now") is None
    assert metric_value(scrape, "hist.therouter.nonsense.count") is None


def test_the_scrape_of_another_moment_disagrees() -> None:
    """Known-bad input for the comparison above: the page of one moment against the scrape of
    another must show differences."""
    data, other = document(moved=False), parse_scrape(render(snapshot(moved=True)))
    differ = [n for n in metric_names(data)
              if metric_value(other, n) != pytest.approx(flat_numbers(data)[n])]
    assert "jobs.therouter.queued" in differ and "hist.therouter.notice_lag.count" in differ
    assert "journal.dropped" not in differ


def test_fold_beyond_max_keys_shows_the_rest_as_other() -> None:
    loads = tuple(QueueLoad(provider="therouter", key=f"{i:016x}", depth=i, busy=0)
                  for i in range(30))
    data = dashboard_data(MetricsSnapshot(providers={"therouter": ProviderMetrics()},
                                          queues=loads),
                          clock=ClockInfo(fake=True, now=0.0),
                          preset=PresetInfo(current=None, available=()),
                          queues=QueueInfo(concurrency=2, scope="account"), max_keys=4)
    assert [q["depth"] for q in data["queues"]["top"]] == [29, 28, 27, 26]
    assert data["queues"]["other"] == [{"provider": "therouter", "keys": 26,
                                        "depth": sum(range(26)), "busy": 0}]
    scrape = render(MetricsSnapshot(providers={"therouter": ProviderMetrics()}, queues=loads),
                    max_keys=4)
    assert metric_value(scrape, "queue.therouter.other.depth") == sum(range(26))


def test_flat_numbers_of_a_minimal_document() -> None:
    """Only the required parts: what the page must still show."""
    minimal = {"version": 1, "clock": {"fake": True, "now": 1.0},
               "providers": {"therouter": {"jobs": {"queued": 3}}}}
    schemas.validate("admin/dashboard", minimal)
    assert flat_numbers(minimal) == {"clock.now": 1.0, "jobs.therouter.queued": 3}


def test_mismatches_catches_every_kind_of_difference() -> None:
    expected = {"jobs.a.queued": 2, "hist.a.x.mean": 1.234, "clock.now": 0.0}
    good = {"jobs.a.queued": ("2", "2"), "hist.a.x.mean": ("1.234", "1.23"),
            "clock.now": ("0", "1970-01-01 00:00:00Z"), "rate.a.status": ("3.5", "3.5"),
            "hist.a.x.p50": ("", "—")}
    assert mismatches(good, expected) == []
    assert mismatches({**good, "jobs.a.queued": ("3", "3")}, expected) == [
        "jobs.a.queued: data-value '3', expected 2"]
    assert mismatches({**good, "jobs.a.queued": ("2", "20")}, expected) == [
        "jobs.a.queued: shows '20', expected '2'"]
    assert mismatches({**good, "hist.a.x.mean": ("1.234", "1.3")}, expected)
    assert mismatches({k: v for k, v in good.items() if k != "clock.now"}, expected) == [
        "clock.now: expected 0.0, not on the page"]
    assert mismatches({**good, "jobs.a.running": ("1", "1")}, expected) == [
        "jobs.a.running: the page shows 1 but the data has no such number"]


def test_page_is_one_self_contained_file() -> None:
    html = page().decode()
    assert "<script>" in html and "</html>" in html
    # nothing fetched from elsewhere: no src/href to another host, no @import, no web fonts
    urls = set(re.findall(r"https?://[^\s\"')]+", html))
    assert urls == {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|@font-face", html)
    assert "dashboard.json" in html and CARELESS not in html
