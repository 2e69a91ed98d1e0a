"""The journal judges clients: a careless one shows up with exactly its violations."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from wanmock.server import FakeClock
from wanmock.server.web.runtime import owner_of

pytestmark = pytest.mark.anyio

SUBMIT = "/v1/images/generations?async=true"
BODY = {"model": "wan/wan2.2-t2i-flash", "prompt": "x"}


async def test_a_careless_client_is_caught_with_exactly_its_violations(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    app = make_app(lifecycle={"failure_rate": 1.0, "run_time": "fixed(1)"})
    http = connect(app)
    job = (await http.post(SUBMIT, json=BODY)).json()["id"]
    await http.post("/__admin/script", json={
        "responses": [{"fault": "http-429", "retry_after": 5}], "operation": "status"})
    statuses = []
    for _ in range(12):  # polls every 10 ms, straight through the Retry-After and the failure
        answer = await http.get(f"/v1/jobs/{job}")
        statuses.append(answer.json().get("status", answer.status_code))
        clock.advance(0.01)
    clock.advance(10)
    for _ in range(3):  # and keeps polling long after "failed"
        statuses.append((await http.get(f"/v1/jobs/{job}")).json()["status"])
        clock.advance(0.01)

    rt = app.state.wanmock
    summary = rt.journal.job(job)
    assert statuses[0] == 429 and statuses[-1] == "failed"
    assert (summary.polls, summary.retries) == (14, 1)  # the request after the 429 retries
    assert summary.min_poll_interval == pytest.approx(0.01)
    assert summary.min_retry_gap == pytest.approx(0.01)
    assert summary.ignored_retry_after == 11  # every request in the next 5 s
    first_failed = statuses.index("failed")
    assert summary.polls_after_terminal == len(statuses) - first_failed - 1
    assert summary.terminal_phase == "failed" and summary.results_before_success == 0
    flagged = {flag for e in rt.journal.query(job_id=job) for flag in e.flags}
    assert flagged == {"ignored-retry-after", "poll-after-terminal", "retry"}
    entries = (await http.get("/__admin/journal", params={"job_id": job})).json()["entries"]
    assert len(entries) == 16 and entries[0]["operation"] == "submit"
    assert entries[1]["status"] == 429 and entries[1]["fault"] == "http-429"
    assert entries[1]["key"] == owner_of("test-key") != "test-key"


async def test_a_careful_client_has_a_clean_record(http: Checked, app: Starlette,
                                                   clock: FakeClock) -> None:
    job = (await http.post(SUBMIT, json=BODY)).json()["id"]
    while (await http.get(f"/v1/jobs/{job}")).json()["status"] != "succeeded":
        clock.advance(5)
    url = (await http.get(f"/v1/jobs/{job}/content")).headers["location"]
    assert (await http.get(url)).status_code == 200
    summary = (await http.get("/__admin/journal/jobs", params={"job_id": job})).json()
    assert summary["polls_after_terminal"] == 0 and summary["ignored_retry_after"] == 0
    assert summary["results_before_success"] == 0 and summary["downloads"] == 1
    assert summary["min_poll_interval"] == 5.0 and summary["retries"] == 0


async def test_validation_errors_are_journaled(http: Checked, app: Starlette) -> None:
    await http.post(SUBMIT, json={"model": "wan/wan2.2-t2i-flash", "n": 9})
    (entry,) = app.state.wanmock.journal.query()
    assert entry.status == 400 and set(entry.violations) == {"n: maximum", "prompt: required"}


async def test_journal_can_be_disabled(make_app: Callable[..., Starlette],
                                       connect: Callable[..., Checked]) -> None:
    app = make_app(journal={"enabled": False})
    await connect(app).post(SUBMIT, json=BODY)
    assert app.state.wanmock.journal.total == 0


async def test_same_seed_same_requests_same_responses(clock: FakeClock) -> None:
    from wanmock.server import Config, create_app

    async def run() -> list[tuple[int, bytes]]:
        fake = FakeClock()
        app = create_app(Config().replace(server={"seed": 77}).with_preset("flaky"), clock=fake)
        seen: list[tuple[int, bytes]] = []
        async with Checked(app, checked=False) as http:
            ids = []
            for i in range(20):
                answer = await http.post("/v1/models/wan-ai/wan-2-2/flash/text-to-image",
                                         json={"prompt": f"p{i}"})
                seen.append((answer.status_code, answer.content))
                if answer.status_code == 200 and answer.content.endswith(b"}"):
                    ids.append(answer.json()["request_id"])
            for _ in range(40):
                fake.advance(7)
                for request_id in ids:
                    try:
                        answer = await http.get(f"/v1/requests/{request_id}/status")
                    except Exception as exc:  # a dropped connection
                        seen.append((-1, type(exc).__name__.encode()))
                        continue
                    seen.append((answer.status_code, answer.content))
        return seen

    first, second = await run(), await run()
    assert first == second
    assert len({status for status, _ in first}) > 2  # the run did see faults
