"""RunComfy-only behaviour: the seed's input schema and the selectable doc variants."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from tests.support import record_of
from wanmock.server import FakeClock

pytestmark = pytest.mark.anyio

MODEL = "wan-ai/wan-2-2/flash/text-to-image"
SUBMIT = f"/v1/models/{MODEL}"


async def submit(http: Checked, **body: object) -> str:
    answer = await http.post(SUBMIT, json={"prompt": "a red fox", **body})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["request_id"])


async def test_submit_answers_with_the_documented_urls(http: Checked) -> None:
    answer = await http.post(SUBMIT, json={"prompt": "x"})
    body = answer.json()
    request_id = body["request_id"]
    assert uuid.UUID(request_id).version == 4
    base = f"http://127.0.0.1:8000/v1/requests/{request_id}"
    assert (body["status_url"], body["result_url"], body["cancel_url"]) == (
        f"{base}/status", f"{base}/result", f"{base}/cancel")


async def test_seed_defaults_are_applied(http: Checked, app: Starlette) -> None:
    request_id = await submit(http)
    record = record_of(app, request_id)
    raw = record.request.submitted
    assert raw["aspect_ratio"] == "1440:810 (16:9)" and raw["seed"] == 58583956
    assert raw["prompt_extend"] is True and raw["duration"] == 5 and raw["negative_prompt"] == ""
    assert (record.request.width, record.request.height) == (1440, 810)


async def test_result_before_completion_returns_the_state(http: Checked, clock: FakeClock) -> None:
    request_id = await submit(http)
    queued = (await http.get(f"/v1/requests/{request_id}/result")).json()
    assert queued["status"] == "in_queue" and "output" not in queued
    clock.advance(10)
    running = (await http.get(f"/v1/requests/{request_id}/result")).json()
    assert running["status"] == "in_progress" and running["finished_at"] is None
    clock.advance(100)
    done = (await http.get(f"/v1/requests/{request_id}/result")).json()
    assert done["status"] == "succeeded" and done["output"]["image"].startswith("http://")
    assert done["created_at"].endswith("Z") and done["finished_at"] > done["created_at"]


async def test_variants_from_runcomfys_own_mock(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(runcomfy={"result_before_done": "error-400005",
                                      "submit_status": 202, "output_field": "images"}))
    answer = await http.post(SUBMIT, json={"prompt": "x"})
    assert answer.status_code == 202
    request_id = answer.json()["request_id"]
    early = await http.get(f"/v1/requests/{request_id}/result")
    assert early.status_code == 400 and early.json()["error_code"] == 400005
    clock.advance(100)
    done = (await http.get(f"/v1/requests/{request_id}/result")).json()
    assert list(done["output"]) == ["images"]


async def test_failed_status_word_can_be_the_documented_completed(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(runcomfy={"failed_status_word": "completed"},
                            lifecycle={"failure_rate": 1.0}))
    request_id = await submit(http)
    clock.advance(100)
    assert (await http.get(f"/v1/requests/{request_id}/status")).json()["status"] == "completed"
    assert (await http.get(f"/v1/requests/{request_id}/result")).json()["status"] == "failed"


async def test_auth_error_variants(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked]
) -> None:
    default = await connect(make_app(), key=None).post(SUBMIT, json={"prompt": "x"})
    assert default.status_code == 401 and default.json()["error_code"] == 401001
    model_api = connect(make_app(runcomfy={"auth_error": "400004"}), key=None)
    answer = await model_api.post(SUBMIT, json={"prompt": "x"})
    assert answer.status_code == 400 and answer.json()["error_code"] == 400004


async def test_unknown_model_and_malformed_request_id(http: Checked) -> None:
    answer = await http.post("/v1/models/wan-ai/wan-2-2/text-to-image", json={"prompt": "x"})
    assert answer.status_code == 400 and answer.json()["error_code"] == 400001
    assert MODEL in answer.json()["error_message"]
    bad_id = await http.get("/v1/requests/not-a-uuid/status")
    assert bad_id.status_code == 400 and bad_id.json()["error_code"] == 400001


async def test_validation_errors_list_every_field(http: Checked) -> None:
    answer = await http.post(SUBMIT, json={"prompt": 1, "aspect_ratio": "16:9", "duration": 10,
                                           "prompt_extend": "yes", "colour": "red"})
    assert answer.status_code == 422
    body = answer.json()
    assert body["error_code"] == 422001
    fields = sorted(d["loc"][-1] for d in body["detail"])
    assert fields == ["aspect_ratio", "colour", "duration", "prompt", "prompt_extend"]
    enum = next(d for d in body["detail"] if d["loc"][-1] == "aspect_ratio")
    assert "1440:810 (16:9)" in enum["msg"] and enum["type"] == "enum"


async def test_unknown_fields_can_be_ignored(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked]
) -> None:
    http = connect(make_app(runcomfy={"reject_unknown_fields": False}))
    assert (await http.post(SUBMIT, json={"prompt": "x", "colour": "red"})).status_code == 200


async def test_cancel_outcomes(http: Checked, clock: FakeClock) -> None:
    ids = [await submit(http) for _ in range(3)]
    clock.advance(2)
    queued = (await http.post(f"/v1/requests/{ids[2]}/cancel")).json()
    assert (queued["outcome"], queued["status"]) == ("cancelled", "cancelled")
    again = (await http.post(f"/v1/requests/{ids[2]}/cancel")).json()
    assert again["outcome"] == "cancelled"
    clock.advance(100)
    done = (await http.post(f"/v1/requests/{ids[0]}/cancel")).json()
    assert (done["outcome"], done["status"]) == ("not_cancellable", "completed")


async def test_a_running_request_is_not_cancellable(http: Checked, clock: FakeClock) -> None:
    job = await submit(http)
    clock.advance(10)
    answer = await http.post(f"/v1/requests/{job}/cancel")
    assert answer.status_code == 202 and answer.json()["outcome"] == "not_cancellable"
    assert answer.json()["status"] == "in_progress"


async def test_every_documented_field_round_trips(http: Checked, clock: FakeClock) -> None:
    import io

    from PIL import Image

    job = await submit(http, aspect_ratio="810:1440 (9:16)", seed=42, negative_prompt="fog",
                       prompt_extend=False, duration=5)
    clock.advance(100)
    output = (await http.get(f"/v1/requests/{job}/result")).json()["output"]
    image = Image.open(io.BytesIO((await http.get(output["image"])).content))
    assert image.size == (810, 1440)
