"""The dashboard page in headless Chromium, against a stand-in admin API serving canned data.

The stand-in is a few Starlette routes of this test (the real ones are wired elsewhere): it
answers ``dashboard.json`` from :mod:`canned`, records every control request, and after an
``advance`` answers the document of the moved clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wanmock.server.web.dashboard import PAGE_HEADERS, flat_numbers, page
from wanmock.server.web.serve import LiveServer

from .browser import is_png, leave_pages, mismatches, shown_numbers
from .canned import JOB, document, journal


@dataclass
class StandIn:
    """What the stand-in admin API serves and what it was sent."""

    doc: dict[str, Any] = field(default_factory=document)
    token: str | None = None
    posts: list[tuple[str, str | None, str | None, Any]] = field(default_factory=list)
    unauthorized: int = 0

    def app(self) -> Starlette:
        def allowed(request: Request) -> bool:
            if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
                self.unauthorized += 1
                return False
            return True

        async def dispatch(request: Request) -> Response:
            path = request.url.path.removeprefix("/__admin")
            if path in ("/", "/dashboard"):  # the page holds no data: a browser gets it first
                return Response(page(), media_type="text/html", headers=PAGE_HEADERS)
            if not allowed(request):
                return JSONResponse({"error": "admin API: send 'Authorization: Bearer <admin "
                                              "token>'"}, 401)
            if request.method == "POST":
                body = json.loads(await request.body() or b"null")
                self.posts.append((path, request.headers.get("content-type"),
                                   request.headers.get("authorization"), body))
                if path == "/clock/advance":
                    self.doc = document(moved=True)
                    return JSONResponse({"now": self.doc["clock"]["now"], "fake": True})
                if path == "/presets":
                    self.doc = {**self.doc, "preset": {**self.doc["preset"],
                                                       "current": body["name"]}}
                return JSONResponse({"ok": True})
            if path == "/dashboard.json":
                return JSONResponse(self.doc)
            if path == "/journal":
                return JSONResponse(journal(request.query_params["job_id"]))
            return JSONResponse({"error": f"no route {path}"}, 404)

        paths = ["/__admin/", "/__admin/dashboard", "/__admin/dashboard.json",
                 "/__admin/journal", "/__admin/clock/advance", "/__admin/presets",
                 "/__admin/reset"]
        return Starlette(routes=[Route(p, dispatch, methods=["GET", "POST"]) for p in paths])


@pytest.fixture
def stand_in(chromium: Any) -> Iterator[tuple[StandIn, str]]:
    state = StandIn()
    with LiveServer(state.app()) as server:
        yield state, server.url
        leave_pages(chromium)  # before the server goes: a polling page would log refusals


def wait_for_value(page: Any, metric: str, value: float) -> None:
    page.wait_for_selector(f'[data-metric="{metric}"][data-value="{value}"]')


def test_page_shows_the_canned_numbers_and_advance_moves_them(
    browser_page: Any, stand_in: tuple[StandIn, str], tmp_path: Any
) -> None:
    state, url = stand_in
    before, after = document(moved=False), document(moved=True)
    browser_page.goto(f"{url}/__admin/")
    wait_for_value(browser_page, "jobs.therouter.queued", 2)
    assert mismatches(shown_numbers(browser_page), flat_numbers(before)) == []
    assert browser_page.text_content("#preset-current") == "flaky"
    assert browser_page.text_content("#clock-kind") == "fake"

    browser_page.fill("#advance-seconds", "45")
    browser_page.click("#advance-btn")
    wait_for_value(browser_page, "jobs.therouter.succeeded", 2)
    assert state.posts == [("/clock/advance", "application/json", None, {"seconds": 45})]
    assert mismatches(shown_numbers(browser_page), flat_numbers(after)) == []
    # rates from successive totals: polls arrived in between, cancels did not
    rate = browser_page.get_attribute('[data-metric="rate.therouter.status"]', "data-value")
    assert float(rate) > 0
    assert browser_page.get_attribute('[data-metric="rate.runcomfy.status"]',
                                      "data-value") == "0"

    journal_link = browser_page.eval_on_selector("#violations a.key", "a => a.href")
    key = after["worst_clients"][0]["key"]
    assert journal_link == f"{url}/__admin/journal?key={key}"

    browser_page.click(f"#recent button:text('{JOB}')")
    browser_page.wait_for_selector("#timeline")
    rows = browser_page.eval_on_selector_all(
        "#drill tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert [r[1] for r in rows] == ["submit", "status", "status", "status", "status", "download"]
    assert [r[0] for r in rows] == ["t+0s", "t+1s", "t+2s", "t+40s", "t+41s", "t+42.5s"]
    assert [r[4] for r in rows].index("terminal") == 3
    assert rows[4][7] == "poll-after-terminal"
    assert browser_page.locator("#timeline .mark").count() == 6

    shot = tmp_path / "dashboard.png"
    browser_page.screenshot(path=shot, full_page=True)
    assert is_png(shot) and shot.stat().st_size > 10_000


def test_preset_and_reset_buttons_post_json(browser_page: Any,
                                            stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.type)
        dialog.accept()

    browser_page.on("dialog", answer)
    browser_page.goto(f"{url}/__admin/dashboard")
    wait_for_value(browser_page, "jobs.therouter.queued", 2)
    browser_page.select_option("#preset-select", "outage")
    browser_page.click("#preset-btn")
    expect(browser_page.locator("#preset-current")).to_have_text("outage")
    with browser_page.expect_response(lambda r: r.url.endswith("/__admin/reset")) as sent:
        browser_page.click("#reset-btn")
    assert sent.value.status == 200
    assert state.posts == [("/presets", "application/json", None, {"name": "outage"}),
                           ("/reset", "application/json", None, {})]
    assert dialogs == ["confirm"]


def test_asks_for_the_admin_token_once_and_sends_it(browser_page: Any,
                                                   stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.token = "s3cret"
    prompts: list[str] = []

    def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        dialog.accept("s3cret")

    browser_page.on("dialog", answer)
    browser_page.goto(f"{url}/__admin/")
    wait_for_value(browser_page, "jobs.therouter.queued", 2)
    browser_page.click("#advance-btn")
    wait_for_value(browser_page, "jobs.therouter.succeeded", 2)
    assert len(prompts) == 1 and "admin token" in prompts[0]
    assert state.posts == [("/clock/advance", "application/json", "Bearer s3cret",
                            {"seconds": 30})]
    assert state.unauthorized == 1


def test_a_refused_token_is_asked_once_and_reported(browser_page: Any,
                                                    stand_in: tuple[StandIn, str]) -> None:
    state, url = stand_in
    state.token = "s3cret"
    prompts: list[str] = []

    def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        dialog.accept("wrong")

    browser_page.on("dialog", answer)
    browser_page.goto(f"{url}/__admin/")
    # two refreshes, both refused: the second must not ask again
    expect(browser_page.locator("body")).to_have_attribute("data-attempts", "2")
    assert "401" in browser_page.text_content("#status")
    assert browser_page.get_attribute("#status", "class") == "error"
    assert len(prompts) == 1
    assert browser_page.locator('[data-metric="jobs.therouter.queued"]').count() == 0


def test_page_tolerates_a_document_with_only_the_required_parts(
    browser_page: Any, stand_in: tuple[StandIn, str]
) -> None:
    state, url = stand_in
    state.doc = {"version": 1, "clock": {"fake": False, "now": 1_778_637_249.0, "scale": 60},
                 "providers": {"therouter": {"jobs": {"queued": 3}}}}
    browser_page.goto(f"{url}/__admin/")
    wait_for_value(browser_page, "jobs.therouter.queued", 3)
    assert mismatches(shown_numbers(browser_page), flat_numbers(state.doc)) == []
    assert browser_page.text_content("#clock-kind") == "real ×60"
    assert browser_page.is_disabled("#advance-btn")
    assert "no queue data" in browser_page.text_content("#queues")
