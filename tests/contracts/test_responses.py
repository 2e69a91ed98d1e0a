"""``response_problems``: the per-response verdict every checked client in the tests relies on."""

from __future__ import annotations

import httpx
import pytest

from wanmock.contracts.responses import response_problems

STATUS = "http://127.0.0.1:8000/v1/jobs/img_7KFGKQ5TQSM9J622GKV3D8JDK8"
JOB = {"id": "img_7KFGKQ5TQSM9J622GKV3D8JDK8", "object": "image_job", "status": "queued",
       "model": "wan/wan2.2-t2i-flash", "created_at": 1, "expires_at": 604801,
       "polling_url": STATUS}


def answer(method: str, status: int, **kwargs: object) -> httpx.Response:
    response = httpx.Response(status, **kwargs)  # type: ignore[arg-type]
    response.request = httpx.Request(method, STATUS)
    return response


@pytest.mark.parametrize(("method", "status", "body"), [
    ("GET", 200, {"json": JOB}),
    ("HEAD", 200, {}),          # a HEAD answer has no body: judged by its status
    ("HEAD", 404, {}),
])
def test_good_answers_pass(method: str, status: int, body: dict[str, object]) -> None:
    assert response_problems(answer(method, status, **body)) == []


@pytest.mark.parametrize(("method", "status", "body", "says"), [
    ("GET", 200, {"json": {"id": 1}}, "required"),
    ("HEAD", 202, {}, "not documented"),  # GET answers 200, never 202
    ("PUT", 200, {}, "not an endpoint"),
])
def test_bad_answers_fail(method: str, status: int, body: dict[str, object], says: str) -> None:
    problems = response_problems(answer(method, status, **body))
    assert problems and any(says in p.message for p in problems), problems
