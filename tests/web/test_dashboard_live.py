"""The dashboard of the REAL server in headless Chromium: a careless client's fleet on a fake
clock, the page's numbers equal to ``/__admin/metrics``, "Advance clock" moving the jobs, and
the drill-down showing a job's journal.

``WANMOCK_DASHBOARD_PNG=docs/dashboard.png`` also saves the final screenshot there (how the
README's picture is taken).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from wanmock.contracts.drivers import DRIVERS
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.web.dashboard import flat_numbers, metric_names, metric_value, parse_scrape
from wanmock.server.web.serve import LiveServer

from .browser import is_png, leave_pages, mismatches, shown_numbers

#: Jobs each provider's careless client submits (2 run at once per key; the third waits).
JOBS = 3


@pytest.fixture
def live(chromium: Any) -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock()
    config = Config().replace(server={"seed": 7},
                              lifecycle={"queue_delay": "fixed(2)", "run_time": "fixed(60)"})
    with LiveServer(create_app(config, clock=clock)) as server:
        yield server.url, clock
        leave_pages(chromium)  # before the server goes: a polling page would log refusals


async def careless_start(url: str) -> dict[str, list[str]]:
    """Each provider's client submits, polls one job three times in the same instant, cancels
    the waiting job and polls it twice after its cancel. Returns the job ids per provider."""
    ids: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=url, headers={"authorization": "Bearer careless"},
                                 timeout=10) as http:
        for name in sorted(DRIVERS):
            driver = DRIVERS[name](http)
            jobs = [driver.job_id(await driver.submit()) for _ in range(JOBS)]
            for _ in range(3):
                assert (await driver.status(jobs[0])).status_code == 200
            assert driver.cancelled(await driver.cancel(jobs[-1]))
            for _ in range(2):
                await driver.status(jobs[-1])
            ids[name] = jobs
    return ids


async def careless_finish(url: str, ids: dict[str, list[str]]) -> None:
    """After the jobs ended: each client polls its first job three times (the first sees the
    success; the next two are polls after a terminal state)."""
    async with httpx.AsyncClient(base_url=url, headers={"authorization": "Bearer careless"},
                                 timeout=10) as http:
        for name, jobs in ids.items():
            driver = DRIVERS[name](http)
            for _ in range(3):
                await driver.status(jobs[0])


def shows(metric: str, value: float) -> str:
    """A selector for a page number with this value (written as JavaScript writes numbers)."""
    text = str(int(value)) if float(value).is_integer() else repr(value)
    return f'[data-metric="{metric}"][data-value="{text}"]'


def apart(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a client coroutine in its own thread (Playwright's sync API holds this one's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def truth(url: str) -> tuple[dict[str, float], dict[str, list[tuple[dict[str, str], float]]]]:
    """What dashboard.json and the metrics endpoint say now (each checked against the other)."""
    doc = httpx.get(f"{url}/__admin/dashboard.json").json()
    scrape = parse_scrape(httpx.get(f"{url}/__admin/metrics").content)
    flat = flat_numbers(doc)
    for name in metric_names(doc):
        assert metric_value(scrape, name) == pytest.approx(flat[name]), name
    return flat, scrape


def page_matches_scrape(page: Any, url: str) -> dict[str, float]:
    """The page's numbers == dashboard.json's == the scrape's (waits for a refresh to show the
    document's clock and totals first)."""
    flat, scrape = truth(url)
    page.wait_for_selector(shows("clock.now", flat["clock.now"]))
    page.wait_for_selector(shows("requests.therouter.status", flat["requests.therouter.status"]))
    shown = shown_numbers(page)
    assert mismatches(shown, flat) == []
    for name, (raw, _) in shown.items():
        if raw and name != "clock.now" and not name.startswith(("rate.", "timeline.")):
            assert metric_value(scrape, name) == pytest.approx(float(raw)), name
    return flat


def test_the_real_servers_dashboard_shows_its_metrics_and_moves_with_the_clock(
    browser_page: Any, live: tuple[str, FakeClock], tmp_path: Path
) -> None:
    url, clock = live
    ids = apart(careless_start(url))
    browser_page.goto(f"{url}/__admin/")
    before = page_matches_scrape(browser_page, url)
    for name in DRIVERS:
        assert before[f"jobs.{name}.queued"] == JOBS - 1
        assert before[f"jobs.{name}.cancelled"] == 1
        assert before[f"violations.{name}.poll-after-cancel"] == 2
    assert browser_page.text_content("#clock-kind") == "fake"

    start = clock.now()
    browser_page.fill("#advance-seconds", "90")
    browser_page.click("#advance-btn")
    browser_page.wait_for_selector(shows("jobs.therouter.succeeded", JOBS - 1))
    assert clock.now() == start + 90
    moved = page_matches_scrape(browser_page, url)
    for name in DRIVERS:
        assert (moved[f"jobs.{name}.queued"], moved[f"jobs.{name}.running"]) == (0, 0)
        assert moved[f"jobs.{name}.succeeded"] == JOBS - 1
        assert moved[f"finished.{name}.succeeded"] == JOBS - 1

    apart(careless_finish(url, ids))
    browser_page.wait_for_selector(shows("violations.therouter.poll-after-terminal", 4))
    after = page_matches_scrape(browser_page, url)
    for name in DRIVERS:  # 2 after the cancel; 2 after the poll that saw the success
        assert after[f"violations.{name}.poll-after-terminal"] == 4
        assert after[f"hist.{name}.notice_lag.count"] == 2  # the cancel, and the success
    assert any(k.startswith("worst.") for k in after)

    first = ids["therouter"][0]
    browser_page.click(f"#recent button:text('{first}')")
    browser_page.wait_for_selector("#timeline")
    rows = browser_page.eval_on_selector_all(
        "#drill tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    journal = httpx.get(f"{url}/__admin/journal", params={"job_id": first}).json()["entries"]
    assert [r[1] for r in rows] == [e["operation"] for e in journal]
    assert [r[1] for r in rows] == ["submit", "status", "status", "status", "status", "status",
                                    "status"]
    assert [r[4] for r in rows].index("terminal") == 4
    assert rows[-1][7] == "poll-after-terminal"

    shot = tmp_path / "dashboard.png"
    browser_page.screenshot(path=shot, full_page=True)
    assert is_png(shot) and shot.stat().st_size > 10_000
    if target := os.environ.get("WANMOCK_DASHBOARD_PNG"):
        shutil.copyfile(shot, target)
