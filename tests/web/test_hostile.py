"""Hostile traffic: races on one job, and long runs that must stay bounded in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from tests.support import record_of
from wanmock.server import FakeClock

pytestmark = pytest.mark.anyio
RUNCOMFY = "/v1/models/wan-ai/wan-2-2/flash/text-to-image"


async def test_concurrent_cancel_and_poll_on_one_job(http: Checked, app: Starlette) -> None:
    ids = [(await http.post(RUNCOMFY, json={"prompt": "x"})).json()["request_id"]
           for _ in range(3)]
    job = ids[2]  # queued behind two running jobs
    calls = [http.post(f"/v1/requests/{job}/cancel") if i % 2 else
             http.get(f"/v1/requests/{job}/status") for i in range(40)]
    answers = await asyncio.gather(*calls)
    assert all(a.status_code in (200, 202) for a in answers)
    outcomes = {a.json()["outcome"] for a in answers if "outcome" in a.json()}
    assert outcomes == {"cancelled"}  # every cancel agrees, none says not_cancellable
    assert (await http.get(f"/v1/requests/{job}/status")).json()["status"] == "cancelled"
    record = record_of(app, job)
    assert record.cancelled_at is not None


async def test_thousands_of_jobs_over_a_month_stay_bounded(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    app = make_app(journal={"capacity": 500, "max_jobs": 300},
                   lifecycle={"evict_after": 86_400.0})
    rt = app.state.wanmock
    http = connect(app)
    day = 86_400.0
    retained = []
    for step in range(3000):  # one submit every ~15 simulated minutes for a month,
        key = {"authorization": f"Bearer key-{step}"}  # each from a new API key
        answer = await http.post(RUNCOMFY, json={"prompt": f"p{step}"}, headers=key)
        assert answer.status_code == 200
        await http.get(f"/v1/requests/{answer.json()['request_id']}/status", headers=key)
        clock.advance(900)
        retained.append(len(rt.state))
    # RunComfy retention 1 day + 1 day answering "expired": at most ~2 days of jobs are kept
    per_day = day / 900
    assert max(retained) <= 2 * per_day + 2
    assert retained[-1] == retained[len(retained) // 2]  # a plateau, not growth
    assert len(rt.journal.entries) == 500 and rt.journal.total == 6000
    assert len(rt.journal.jobs()) == 300
    assert rt.state.queue_count < 1024  # the queues of quiet keys are forgotten
    assert rt.state.evicted >= 3000 - max(retained)
