"""DashScope-only behaviour, in-process: defaults, truncation, sizes, codes and the options.

(The official SDK against a live fake: ``tests/providers/test_dashscope_sdk.py``.)
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from starlette.applications import Starlette

from tests.conftest import Checked
from tests.support import until_waiting
from wanmock import schemas
from wanmock.server import FakeClock

pytestmark = pytest.mark.anyio

MODEL = "wan2.2-t2i-flash"
SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"
ASYNC = {"X-DashScope-Async": "enable"}
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


def body(prompt: str = "a red fox", **parameters: Any) -> dict[str, Any]:
    return {"model": MODEL, "input": {"prompt": prompt}, "parameters": parameters}


async def submit(http: Checked, payload: dict[str, Any], **headers: str) -> str:
    answer = await http.post(SUBMIT, json=payload, headers={**ASYNC, **headers})
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"]["task_status"] == "PENDING"
    return str(answer.json()["output"]["task_id"])


async def task(http: Checked, task_id: str) -> dict[str, Any]:
    answer = await http.get(f"/api/v1/tasks/{task_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_defaults_four_images_seed_plus_i_and_extended_prompts(
        http: Checked, clock: FakeClock) -> None:
    job = await submit(http, {"model": MODEL, "input": {"prompt": "a red fox"}})
    pending = await task(http, job)
    assert TIME.match(pending["output"]["submit_time"])
    assert "scheduled_time" not in pending["output"] and "usage" not in pending
    clock.advance(100)
    done = await task(http, job)
    output = done["output"]
    assert output["task_status"] == "SUCCEEDED" and len(output["results"]) == 4  # n: 4
    assert output["task_metrics"] == {"TOTAL": 4, "SUCCEEDED": 4, "FAILED": 0}
    assert done["usage"] == {"image_count": 4}
    assert all(r["orig_prompt"] == "a red fox" and r["actual_prompt"].startswith("a red fox")
               for r in output["results"])
    assert output["submit_time"] < output["scheduled_time"] < output["end_time"]
    pngs = [(await http.get(r["url"])).content for r in output["results"]]
    assert len(set(pngs)) == 4  # image i uses seed + i: four different pictures
    image = Image.open(io.BytesIO(pngs[0]))
    assert image.size == (1024, 1024)  # the default size


async def test_size_and_no_prompt_extension(http: Checked, clock: FakeClock) -> None:
    job = await submit(http, body(size="768*1344", n=1, seed=5, prompt_extend=False))
    clock.advance(100)
    (result,) = (await task(http, job))["output"]["results"]
    assert "actual_prompt" not in result
    assert Image.open(io.BytesIO((await http.get(result["url"])).content)).size == (768, 1344)


async def test_long_prompts_are_truncated_not_refused(http: Checked) -> None:
    payload = body(n=1)
    payload["input"] = {"prompt": "p" * 900, "negative_prompt": "n" * 600}
    job = await submit(http, payload)
    kept = http._transport.app.state.wanmock  # type: ignore[attr-defined]
    record = (await kept.state.read(job, kept.clock.now())).stored.record
    assert len(record.request.prompt) == 800 and len(record.request.negative_prompt) == 500


@pytest.mark.parametrize(("payload", "status", "code", "named"), [
    ({"model": MODEL, "parameters": {}}, 400, "BadRequest.EmptyInput", "input"),
    ({"input": {"prompt": "x"}}, 400, "BadRequest.EmptyModel", "model"),
    (body(size="1440*1440"), 400, "InvalidParameter", "parameters.size"),
    (body(size="1024x1024"), 400, "InvalidParameter", "parameters.size"),
    (body(size="1024*1024\n"), 400, "InvalidParameter", "parameters.size"),  # $ is the end
    (body(n=5), 400, "InvalidParameter", "parameters.n"),
    (body(prompt_extent=True), 400, "InvalidParameter", "parameters.prompt_extent"),
    ({**body(), "model": "wan9"}, 404, "ModelNotFound", "wan9"),
])
async def test_refusals_carry_dashscopes_codes(http: Checked, payload: dict[str, Any],
                                              status: int, code: str, named: str) -> None:
    answer = await http.post(SUBMIT, json=payload, headers=ASYNC)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["code"] == code and named in error["message"] and error["request_id"]


async def test_a_good_body_is_accepted_beside_the_bad_ones(http: Checked) -> None:
    await submit(http, body(size="1414*1414", n=4, seed=2147483647, watermark=True))


async def test_cancel_only_pending(http: Checked, clock: FakeClock) -> None:
    first, _, third = [await submit(http, body(n=1)) for _ in range(3)]
    clock.advance(3)  # two slots: the first two run, the third waits
    refused = await http.post(f"/api/v1/tasks/{first}/cancel")
    assert refused.status_code == 400 and refused.json()["code"] == "UnsupportedOperation"
    assert "PENDING" in refused.json()["message"]
    assert (await task(http, first))["output"]["task_status"] == "RUNNING"
    done = await http.post(f"/api/v1/tasks/{third}/cancel")
    assert done.status_code == 200 and set(done.json()) == {"request_id"}
    assert (await task(http, third))["output"]["task_status"] == "CANCELED"


async def test_partial_failure_and_failed_tasks(http: Checked, clock: FakeClock) -> None:
    partial = await submit(http, body(n=3), **{"X-Wanmock-Scenario": "partial-fail-2"})
    whole = await submit(http, body(n=2), **{"X-Wanmock-Scenario": "partial-fail-2"})
    moderated = await submit(http, body(n=1), **{"X-Wanmock-Scenario": "fail-moderation"})
    clock.advance(200)
    done = await task(http, partial)
    assert done["output"]["task_status"] == "SUCCEEDED" and done["usage"]["image_count"] == 1
    assert [("url" in r, r.get("code")) for r in done["output"]["results"]] == [
        (True, None), (False, "InternalError"), (False, "InternalError")]
    failed = (await task(http, whole))["output"]  # every image failed: the task failed
    assert failed["task_status"] == "FAILED" and failed["code"] == "InternalError"
    assert (await task(http, moderated))["output"]["code"] == "DataInspectionFailed"
    # a failed image has no file, even behind a correctly signed URL
    rt = http._transport.app.state.wanmock  # type: ignore[attr-defined]
    record = (await rt.state.read(partial, rt.clock.now())).stored.record
    for index, expected in ((0, 200), (1, 404)):
        path = f"/files/dashscope/{partial}/{index}.png"
        query = rt.signer.query(path, issued=record.end_at, expires=record.expires_at)
        assert (await http.get(f"{path}?{query}")).status_code == expected


async def test_unknown_after_24_hours(http: Checked, clock: FakeClock) -> None:
    job = await submit(http, body(n=1))
    clock.advance(86_400)
    gone = await task(http, job)
    assert gone["output"] == {"task_id": job, "task_status": "UNKNOWN"}


async def test_sync_call_waits_and_async_only_models_refuse(
        http: Checked, clock: FakeClock) -> None:
    refused = await http.post(SUBMIT, json={**body(), "model": "wanx2.1-t2i-turbo"})
    assert refused.status_code == 403 and refused.json()["code"] == "AccessDenied"
    assert "does not support synchronous calls" in refused.json()["message"]
    bad = await http.post(SUBMIT, json=body(), headers={"X-DashScope-Async": "yes"})
    assert bad.status_code == 400 and "X-DashScope-Async" in bad.text


@pytest.mark.parametrize(("options", "check"), [
    ({"sync_refusal": "invalid-parameter"}, "sync"),
    ({"long_prompt": "reject", "prompt_chars": 500}, "long"),
    ({"require_parameters": True}, "parameters"),
    ({"reject_unknown_fields": False}, "lenient"),
    ({"cancel_output": True}, "cancel"),
    ({"unknown_task": "unknown-status"}, "unknown"),
    ({"utc_offset_hours": 0}, "utc"),
])
async def test_options(make_app: Callable[..., Starlette], connect: Callable[..., Checked],
                       clock: FakeClock, options: dict[str, Any], check: str) -> None:
    default, changed = connect(make_app()), connect(make_app(dashscope=options))
    if check == "sync":
        payload = {**body(), "model": "wanx2.1-t2i-turbo"}
        assert (await default.post(SUBMIT, json=payload)).status_code == 403
        answer = await changed.post(SUBMIT, json=payload)
        assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameter"
    elif check == "long":
        await submit(default, body("p" * 600))
        answer = await changed.post(SUBMIT, json=body("p" * 600), headers=ASYNC)
        assert answer.status_code == 400 and "input.prompt" in answer.text
    elif check == "parameters":
        payload = {"model": MODEL, "input": {"prompt": "x"}}
        await submit(default, payload)
        answer = await changed.post(SUBMIT, json=payload, headers=ASYNC)
        assert answer.json()["code"] == "BadRequest.EmptyParameters"
    elif check == "lenient":
        payload = body(style="<auto>")
        assert (await default.post(SUBMIT, json=payload, headers=ASYNC)).status_code == 400
        await submit(changed, payload)
    elif check == "cancel":
        for http, expected in ((default, None), (changed, "CANCELED")):
            job = await submit(http, body())
            answer = (await http.post(f"/api/v1/tasks/{job}/cancel")).json()
            assert answer.get("output", {}).get("task_status") == expected
    elif check == "unknown":
        unknown = "00000000-0000-4000-8000-000000000000"
        assert (await default.get(f"/api/v1/tasks/{unknown}")).status_code == 404
        answer = await changed.get(f"/api/v1/tasks/{unknown}")
        assert answer.status_code == 200 and answer.json()["output"]["task_status"] == "UNKNOWN"
    else:
        times = []
        for http in (default, changed):
            times.append((await task(http, await submit(http, body())))["output"]["submit_time"])
        assert int(times[0][11:13]) == (int(times[1][11:13]) + 8) % 24


async def listed(http: Checked, **query: Any) -> dict[str, Any]:
    answer = await http.get("/api/v1/tasks", params=query)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_task_list_pages_newest_first_per_key_with_filters(
        app: Starlette, connect: Callable[..., Checked], clock: FakeClock) -> None:
    alice, bob = connect(app, key="alice"), connect(app, key="bob")
    first = await submit(alice, body(n=1))
    clock.advance(1)
    ids = [first] + [await submit(alice, body(n=1)) for _ in range(2)]
    theirs = await submit(bob, body(n=1))
    page = await listed(alice)
    assert [t["task_id"] for t in page["tasks"]] == ids[::-1]  # newest first (ties: later)
    assert (page["page_no"], page["page_size"], page["total"]) == (1, 10, 3)
    assert all(t["model_name"] == MODEL and TIME.match(t["submit_time"]) for t in page["tasks"])
    assert [t["task_id"] for t in (await listed(bob))["tasks"]] == [theirs]  # keys kept apart
    second = await listed(alice, page_no=2, page_size=2)
    assert [t["task_id"] for t in second["tasks"]] == [first] and second["total"] == 3
    assert (await listed(alice, page_no=5))["tasks"] == []
    await alice.post(f"/api/v1/tasks/{ids[2]}/cancel")
    cancelled = await listed(alice, status="CANCELED")
    assert [t["task_id"] for t in cancelled["tasks"]] == [ids[2]] and cancelled["total"] == 1
    pending = [t["task_id"] for t in (await listed(alice))["tasks"]
               if t["task_status"] == "PENDING"]
    assert pending and [t["task_id"] for t in (await listed(alice, status="PENDING"))["tasks"]
                        ] == pending
    clock.advance(30)
    running = await listed(alice, status="RUNNING")
    assert running["total"] >= 1 and all("scheduled_time" in t for t in running["tasks"])
    assert (await listed(alice, model_name="wanx2.1-t2i-turbo"))["total"] == 0
    # times in the zone of dashscope.utc_offset_hours (+8): the first task alone is earlier
    second_of = (await task(alice, ids[1]))["output"]["submit_time"]
    start = re.sub(r"\D", "", second_of)[:14]
    assert (await listed(alice, start_time=start))["total"] == 2
    assert (await listed(alice, end_time=start))["total"] == 3  # inclusive, to the second
    clock.advance(3 * 86400)  # past retention and eviction: none listed
    assert (await listed(alice))["tasks"] == []


@pytest.mark.parametrize(("query", "named"), [
    ({"page_size": "101"}, "page_size"), ({"page_size": "0"}, "page_size"),
    ({"page_no": "0"}, "page_no"), ({"page_no": "x"}, "page_no"),
    ({"start_time": "2025-01-08"}, "start_time"), ({"end_time": "20251301000000"}, "end_time"),
    ({"status": "DONE"}, "status"), ({"status": "UNKNOWN"}, "status"),
    ({"pagesize": "5"}, "pagesize"), ({"start_time": "00010101000000"}, "start_time"),
    ({"page_no": "-1"}, "page_no must be 1..999999999"),
    ({"page_no": "1000000000"}, "page_no must be 1..999999999"),
    ({"page_size": "99999999999"}, "page_size must be 1..100"),
    ({"page_size": "-" + "9" * 400}, "page_size must be 1..100"),
    ([("page_no", "1"), ("page_no", "2")], "page_no must be an integer; got '1,2'"),
])
async def test_task_list_refuses_bad_parameters_naming_them(
        http: Checked, query: Any, named: str) -> None:
    answer = await http.get("/api/v1/tasks", params=query)
    error = answer.json()
    assert answer.status_code == 400 and error["code"] == "InvalidParameter", answer.text
    assert error["message"].startswith(f"{named}") or named in error["message"]


async def test_a_protocol_header_sent_twice_is_one_value_and_refused(http: Checked) -> None:
    """RFC 9110 §5.3: a second, bad value cannot hide behind a valid first one."""
    twice = [("X-DashScope-Async", "enable"), ("X-DashScope-Async", "garbage")]
    answer = await http.post(SUBMIT, json=body(), headers=twice)
    assert answer.status_code == 400 and "'enable, garbage'" in answer.json()["message"]
    assert (await http.post(SUBMIT, json=body(), headers=twice[:1])).status_code == 200


async def test_a_late_synchronous_call_says_how_to_ask_dashscope_for_a_task(
        http: Checked, clock: FakeClock) -> None:
    request = asyncio.create_task(
        http.post(SUBMIT, json=body(), headers={"X-Wanmock-Scenario": "stuck"}))
    await until_waiting(clock)
    clock.advance(300)  # the synchronous deadline
    late = await request
    message = late.json()["message"]
    assert late.status_code == 408 and "X-DashScope-Async: enable" in message, late.text
    assert "?async=true" not in message


async def test_task_list_needs_a_key_and_is_journaled(
        app: Starlette, connect: Callable[..., Checked]) -> None:
    anonymous = connect(app, key=None)
    assert (await anonymous.get("/api/v1/tasks")).status_code == 401
    await listed(connect(app))
    journal = app.state.wanmock.journal
    assert [(e.operation, e.status, e.job_id) for e in journal.entries][-2:] == [
        ("list", 401, None), ("list", 200, None)]


async def test_every_answer_carries_a_fresh_request_id(http: Checked, clock: FakeClock) -> None:
    job = await submit(http, body(n=1))
    polls = [await task(http, job) for _ in range(3)]  # the same task, unchanged: memoised
    assert polls[0]["output"] == polls[1]["output"] == polls[2]["output"]
    ids = [p["request_id"] for p in polls] + [(await listed(http))["request_id"]]
    errors = [(await http.get("/api/v1/tasks/00000000-0000-4000-8000-000000000000")).json()
              for _ in range(2)]
    ids += [e["request_id"] for e in errors]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


async def test_task_lists_count_in_the_metrics_under_their_own_endpoint(http: Checked) -> None:
    await listed(http)
    doc = (await http.get("/__admin/dashboard.json")).json()
    schemas.validate("admin/dashboard", doc)
    scrape = (await http.get("/__admin/metrics")).text
    assert 'endpoint="list",provider="dashscope",status="200"' in scrape
