"""The official ``dashscope`` SDK, unchanged but for its base URL, against a live fake.

The fake runs on 127.0.0.1 on a fake clock; the SDK's ``wait()`` sleeps with ``time.sleep``,
which :func:`~wanmock.contracts.simtime.simulated` routes to the fake clock in the test's thread
(the same machinery ``check_client`` uses), so no test sleeps for real and the SDK's polling
schedule (1, 1, 2, 2, 2, 4 … s) is visible in the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from itertools import pairwise
from typing import Any

import dashscope
import pytest
from dashscope import ImageSynthesis
from dashscope.common.error import InvalidTask

from wanmock.contracts.autojump import Autojump, TrackedServer, Watched
from wanmock.contracts.simtime import Timeline, simulated
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.journal import Journal

KEY = "sk-wanmock-test"
OTHER = "sk-wanmock-other"
MODEL = "wan2.2-t2i-flash"
ASYNC_ONLY = "wanx2.1-t2i-turbo"


@dataclass
class Live:
    url: str
    clock: FakeClock
    journal: Journal
    app: Any


@pytest.fixture
def live() -> Iterator[Live]:
    """A live fake (run 60 s, queue 2 s) whose clock the SDK's sleeps in this thread move."""
    clock = FakeClock()
    config = Config().replace(server={"seed": 7, "api_keys": (KEY, OTHER)},
                              lifecycle={"queue_delay": "fixed(2)", "run_time": "fixed(60)"})
    app = create_app(config, clock=clock)
    watched = Watched(app, clock)
    saved = dashscope.base_http_api_url
    with simulated() as route, TrackedServer(watched) as server:
        timeline = Timeline(clock, server, hang_at=clock.now() + 7200)
        driver = Autojump(server, threshold=0.005, allowed=timeline.server_may_jump,
                          lock=timeline.lock)
        route(timeline)
        dashscope.base_http_api_url = f"{server.url}/api/v1"
        try:
            with driver:
                yield Live(server.url, clock, app.state.wanmock.journal, app)
        finally:
            dashscope.base_http_api_url = saved
            route(None)


def test_call_submits_and_waits_on_the_fake_clock(live: Live) -> None:
    start = live.clock.now()
    answer = ImageSynthesis.call(model=MODEL, prompt="a lighthouse at dusk", n=2, seed=42,
                                 size="1024*1024", api_key=KEY)
    assert answer.status_code == HTTPStatus.OK, answer
    assert answer.output.task_status == "SUCCEEDED"
    assert len(answer.output.results) == 2
    assert all(r.url.startswith(live.url) for r in answer.output.results)
    assert answer.output.results[0].actual_prompt  # prompt_extend defaults to true
    assert answer.usage.image_count == 2
    # the SDK waited 62 simulated seconds, polling 1, 1, 2, 2, 2, 4, 4, 4, 5, 5 … s apart
    assert 62 <= live.clock.now() - start < 70
    polls = [e for e in live.journal.entries if e.operation == "status"]
    gaps = [round(b.sim_time - a.sim_time) for a, b in pairwise(polls)]
    assert gaps[:9] == [1, 1, 2, 2, 2, 4, 4, 4, 5], gaps


def test_async_call_then_fetch_until_terminal(live: Live) -> None:
    task = ImageSynthesis.async_call(model=MODEL, prompt="a fox", n=1, api_key=KEY)
    assert task.status_code == HTTPStatus.OK and task.output.task_status == "PENDING"
    seen = []
    for _ in range(20):
        answer = ImageSynthesis.fetch(task, api_key=KEY)
        assert answer.status_code == HTTPStatus.OK
        seen.append(answer.output.task_status)
        if seen[-1] in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
            break
        live.clock.advance(10)
    assert seen[0] == "PENDING" and "RUNNING" in seen and seen[-1] == "SUCCEEDED"
    assert answer.output.submit_time < answer.output.scheduled_time < answer.output.end_time


def test_cancel_of_a_pending_task(live: Live) -> None:
    task = ImageSynthesis.async_call(model=MODEL, prompt="a fox", n=1, api_key=KEY)
    cancelled = ImageSynthesis.cancel(task, api_key=KEY)
    assert cancelled.status_code == HTTPStatus.OK, cancelled
    assert ImageSynthesis.fetch(task, api_key=KEY).output.task_status == "CANCELED"
    # cancelling a cancelled task again changes nothing and is answered as done (assumed)
    assert ImageSynthesis.cancel(task, api_key=KEY).status_code == HTTPStatus.OK


def test_cancel_of_a_running_task_is_refused(live: Live) -> None:
    task = ImageSynthesis.async_call(model=MODEL, prompt="a fox", n=1, api_key=KEY)
    live.clock.advance(5)
    refused = ImageSynthesis.cancel(task, api_key=KEY)
    assert refused.status_code == HTTPStatus.BAD_REQUEST and refused.code == "UnsupportedOperation"
    assert ImageSynthesis.fetch(task, api_key=KEY).output.task_status == "RUNNING"


def test_wait_on_a_failed_task(live: Live) -> None:
    task = ImageSynthesis.async_call(model=MODEL, prompt="a fox", n=1, api_key=KEY,
                                     headers={"X-Wanmock-Scenario": "fail-moderation"})
    answer = ImageSynthesis.wait(task, api_key=KEY)
    assert answer.status_code == HTTPStatus.OK
    assert answer.output.task_status == "FAILED"
    assert answer.output.code == "DataInspectionFailed" and answer.output.message


def test_partial_failure_counts_only_successful_images(live: Live) -> None:
    answer = ImageSynthesis.call(model=MODEL, prompt="a fox", n=3, api_key=KEY,
                                 headers={"X-Wanmock-Scenario": "partial-fail-1"})
    assert answer.output.task_status == "SUCCEEDED"
    results = answer.output.results
    assert [(bool(r.get("url")), bool(r.get("code"))) for r in results] == (
        [(True, False)] * 2 + [(False, True)])
    assert answer.usage.image_count == 2
    assert answer.output.task_metrics == {"TOTAL": 3, "SUCCEEDED": 2, "FAILED": 1}


def test_sync_call_answers_the_finished_task(live: Live) -> None:
    answer = ImageSynthesis.sync_call(model=MODEL, prompt="a fox", n=1, api_key=KEY)
    assert answer.status_code == HTTPStatus.OK, answer
    assert answer.output.task_status == "SUCCEEDED" and len(answer.output.results) == 1


def test_sync_call_to_an_async_only_model_is_refused(live: Live) -> None:
    answer = ImageSynthesis.sync_call(model=ASYNC_ONLY, prompt="a fox", api_key=KEY)
    assert answer.status_code == HTTPStatus.FORBIDDEN and answer.code == "AccessDenied"
    assert "does not support synchronous calls" in answer.message
    assert answer.request_id


def test_invalid_parameter_is_the_sdks_error_value(live: Live) -> None:
    answer = ImageSynthesis.async_call(model=MODEL, prompt="a fox", n=9, api_key=KEY)
    assert answer.status_code == HTTPStatus.BAD_REQUEST
    assert answer.code == "InvalidParameter" and "parameters.n" in answer.message
    assert answer.request_id
    # call() = async_call + wait: the SDK's wait refuses a task whose creation failed
    with pytest.raises(InvalidTask, match="InvalidParameter"):
        ImageSynthesis.call(model=MODEL, prompt="a fox", size="2000*2000", api_key=KEY)


def test_bad_key_is_the_sdks_error_value(live: Live) -> None:
    answer = ImageSynthesis.async_call(model=MODEL, prompt="a fox", api_key="sk-wrong")
    assert answer.status_code == HTTPStatus.UNAUTHORIZED and answer.code == "InvalidApiKey"


def test_a_long_prompt_is_truncated_not_refused(live: Live) -> None:
    answer = ImageSynthesis.call(model=MODEL, prompt="x" * 1000, n=1, api_key=KEY,
                                 negative_prompt="y" * 600)
    assert answer.output.task_status == "SUCCEEDED"
    assert answer.output.results[0].orig_prompt == "x" * 800


def test_list_answers_the_keys_tasks_paged_and_filtered(live: Live) -> None:
    mine = [ImageSynthesis.async_call(model=MODEL, prompt=f"a fox {i}", n=1, api_key=KEY)
            .output.task_id for i in range(3)]
    theirs = ImageSynthesis.async_call(model=MODEL, prompt="a cat", n=1, api_key=OTHER)
    ImageSynthesis.cancel(mine[0], api_key=KEY)
    answer = ImageSynthesis.list(api_key=KEY)
    assert answer.status_code == HTTPStatus.OK, answer
    assert answer.request_id and "request_id" not in answer.output
    assert [t["task_id"] for t in answer.output["tasks"]] == mine[::-1]
    assert answer.output["total"] == 3
    page = ImageSynthesis.list(page_no=2, page_size=2, api_key=KEY)
    assert [t["task_id"] for t in page.output["tasks"]] == [mine[0]]
    cancelled = ImageSynthesis.list(status="CANCELED", api_key=KEY)
    assert [t["task_id"] for t in cancelled.output["tasks"]] == [mine[0]]
    other = ImageSynthesis.list(api_key=OTHER, model_name=MODEL)
    assert [t["task_id"] for t in other.output["tasks"]] == [theirs.output.task_id]
    assert ImageSynthesis.list(api_key=KEY).request_id != answer.request_id
    refused = ImageSynthesis.list(page_size=500, api_key=KEY)
    assert refused.status_code == HTTPStatus.BAD_REQUEST and refused.code == "InvalidParameter"
    assert "page_size" in refused.message
