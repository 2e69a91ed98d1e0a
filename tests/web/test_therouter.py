"""TheRouter-only behaviour: sync mode, /content, both cancel paths, model and size rules."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from tests.support import until_waiting
from wanmock.server import FakeClock

pytestmark = pytest.mark.anyio

MODEL = "wan/wan2.2-t2i-flash"
SUBMIT = "/v1/images/generations"


def body(**extra: object) -> dict[str, object]:
    return {"model": MODEL, "prompt": "a red fox", **extra}


async def test_submit_answers_the_documented_202(http: Checked) -> None:
    answer = await http.post(SUBMIT, params={"async": "true"}, json=body())
    assert answer.status_code == 202
    job = answer.json()
    assert re.fullmatch(r"img_[0-9A-Za-z]{26}", job["id"])
    assert job["object"] == "image_job" and job["status"] == "queued" and job["model"] == MODEL
    assert job["expires_at"] - job["created_at"] == 604800
    assert job["polling_url"] == f"http://127.0.0.1:8000/v1/jobs/{job['id']}"


async def test_sync_mode_answers_when_the_job_finishes(http: Checked, clock: FakeClock) -> None:
    request = asyncio.create_task(http.post(SUBMIT, json=body(n=2)))
    await until_waiting(clock)
    clock.advance(61.9)
    await asyncio.sleep(0)
    assert not request.done()
    clock.advance(0.1)
    answer = await request
    assert answer.status_code == 200
    assert len(answer.json()["data"]) == 2


async def test_sync_mode_times_out_at_the_edge_deadline_and_the_job_goes_on(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(lifecycle={"run_time": "fixed(150)"}))
    request = asyncio.create_task(http.post(SUBMIT, json=body()))
    await until_waiting(clock)
    clock.advance(100)
    answer = await request
    assert answer.status_code == 504
    message = answer.json()["error"]["message"]
    assert "100 s" in message and "?async=true" in message
    job_id = re.search(r"img_[0-9A-Za-z]{26}", message).group(0)  # type: ignore[union-attr]
    clock.advance(100)
    assert (await http.get(f"/v1/jobs/{job_id}")).json()["status"] == "succeeded"


async def test_sync_mode_reports_a_failed_job(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(lifecycle={"failure_rate": 1.0}))
    request = asyncio.create_task(http.post(SUBMIT, json=body()))
    await until_waiting(clock)
    clock.advance(100)
    answer = await request
    assert answer.status_code in (400, 502)
    assert answer.json()["error"]["code"] in ("content_policy_violation", "upstream_error")


async def test_async_flag_must_be_true_or_false(http: Checked) -> None:
    answer = await http.post(SUBMIT, params={"async": "yes"}, json=body())
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "async"


async def test_content_redirects_only_after_success(http: Checked, clock: FakeClock) -> None:
    job = (await http.post(SUBMIT, params={"async": "true"}, json=body(n=2))).json()["id"]
    early = await http.get(f"/v1/jobs/{job}/content")
    assert early.status_code == 409 and early.json()["error"]["code"] == "job_not_ready"
    assert "poll GET /v1/jobs/{id} until succeeded" in early.json()["error"]["message"]
    clock.advance(100)
    first = await http.get(f"/v1/jobs/{job}/content")
    second = await http.get(f"/v1/jobs/{job}/content", params={"index": 1})
    assert first.status_code == second.status_code == 302
    assert "/0.png?" in first.headers["location"] and "/1.png?" in second.headers["location"]
    image = await http.get(first.headers["location"])
    assert image.headers["content-type"] == "image/png"
    bad = await http.get(f"/v1/jobs/{job}/content", params={"index": 2})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "index"
    clock.advance(604800)
    gone = await http.get(f"/v1/jobs/{job}/content")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "job_expired"


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_both_cancel_paths(http: Checked, clock: FakeClock, method: str) -> None:
    jobs = [(await http.post(SUBMIT, params={"async": "true"}, json=body())).json()["id"]
            for _ in range(3)]
    path = f"/v1/jobs/{jobs[2]}" + ("/cancel" if method == "POST" else "")
    answer = await http.request(method, path)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    again = await http.request(method, path)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


async def test_cancel_running_can_be_allowed(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(therouter={"cancel_running": True}))
    job = (await http.post(SUBMIT, params={"async": "true"}, json=body())).json()["id"]
    clock.advance(10)
    answer = await http.post(f"/v1/jobs/{job}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("extra", "param", "text"),
    [
        ({"model": "wan/wan2.2-t2i-plus"}, "model", "available: wan/wan2.2-t2i-flash"),
        ({"size": "1024*1024"}, "size", "WIDTHxHEIGHT"),
        ({"size": "256x256"}, "size", "512-1440"),
        ({"n": 5}, "n", "<= 4"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"quality": "high"}, "quality", "unknown field 'quality'"),
        ({"prompt": ""}, "prompt", "must not be empty"),
    ],
)
async def test_parameters_are_validated(http: Checked, extra: dict, param: str, text: str) -> None:  # type: ignore[type-arg]
    answer = await http.post(SUBMIT, params={"async": "true"}, json=body(**extra))
    assert answer.status_code in (400, 404)
    error = answer.json()["error"]
    assert error["param"] == param and text in error["message"]


async def test_lenient_options(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked]
) -> None:
    http = connect(make_app(therouter={"size_syntax": "x-or-star",
                                       "reject_unknown_fields": False}))
    answer = await http.post(SUBMIT, params={"async": "true"},
                             json=body(size="1024*768", quality="high"))
    assert answer.status_code == 202


async def test_a_running_job_cannot_be_cancelled_409(http: Checked, clock: FakeClock) -> None:
    job = (await http.post(SUBMIT, params={"async": "true"}, json=body())).json()["id"]
    clock.advance(10)
    answer = await http.post(f"/v1/jobs/{job}/cancel")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "job_not_cancellable"
    assert "only jobs that are queued" in answer.json()["error"]["message"]


async def test_size_n_and_seed_round_trip(http: Checked, clock: FakeClock) -> None:
    import io

    from PIL import Image

    job = (await http.post(SUBMIT, params={"async": "true"},
                           json=body(size="768x1280", n=2, seed=42))).json()["id"]
    clock.advance(100)
    urls = (await http.get(f"/v1/jobs/{job}")).json()["unsigned_urls"]
    assert len(urls) == 2
    for url in urls:
        assert Image.open(io.BytesIO((await http.get(url)).content)).size == (768, 1280)


async def test_two_authorization_headers_are_refused_not_one_of_them_chosen(
        http: Checked) -> None:
    twice = [("authorization", "Bearer test-key"), ("authorization", "Bearer other-key")]
    answer = await http.post(SUBMIT, params={"async": "true"}, json=body(), headers=twice)
    assert answer.status_code == 401 and "malformed" in answer.json()["error"]["message"]


async def test_a_query_parameter_given_twice_is_refused_naming_it(http: Checked) -> None:
    answer = await http.post(SUBMIT, params=[("async", "true"), ("async", "false")], json=body())
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "async"
    assert "'true,false'" in answer.json()["error"]["message"]


async def test_content_of_a_job_that_failed_says_it_will_never_have_any(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(lifecycle={"failure_rate": 1.0}))
    job = (await http.post(SUBMIT, params={"async": "true"}, json=body())).json()["id"]
    clock.advance(300)
    answer = await http.get(f"/v1/jobs/{job}/content")
    message = answer.json()["error"]["message"]
    assert answer.status_code == 409 and "will never have a result" in message
    assert "until succeeded" not in message  # polling on would never help

