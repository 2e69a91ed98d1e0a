"""Every provider through its lifecycle over HTTP (in-process); every response schema-checked."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from tests.conftest import Checked
from wanmock.contracts.drivers import DRIVERS, Driver
from wanmock.server import FakeClock, Phase

pytestmark = pytest.mark.anyio


async def test_submit_queue_run_succeed_download(driver: Driver, clock: FakeClock) -> None:
    submitted = await driver.submit()
    assert submitted.status_code in (200, 202)
    job = driver.job_id(submitted)
    assert driver.phase(await driver.status(job)) is Phase.QUEUED
    clock.advance(2)  # queue_delay fixed(2) in the test app
    assert driver.phase(await driver.status(job)) is Phase.RUNNING
    clock.advance(59.9)
    assert driver.phase(await driver.status(job)) is Phase.RUNNING
    clock.advance(0.1)
    assert driver.phase(await driver.status(job)) is Phase.SUCCEEDED
    result = await driver.result(job)
    (url,) = driver.image_urls(result)
    assert url.startswith("http://127.0.0.1:8000/files/")
    png = await driver.http.get(url, headers={"authorization": ""})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).format == "PNG"


async def test_queue_positions_are_real_and_shrink(driver: Driver, clock: FakeClock) -> None:
    jobs = [driver.job_id(await driver.submit()) for _ in range(5)]
    clock.advance(2)  # concurrency 2: two run, three wait
    positions = [(await driver.status(j)).json().get("queue_position") for j in jobs]
    phases = [driver.phase(await driver.status(j)) for j in jobs]
    assert phases == [Phase.RUNNING] * 2 + [Phase.QUEUED] * 3
    if positions != [None] * 5:  # a provider that shows positions shows true ones
        assert positions == [None, None, 0, 1, 2]
        clock.advance(60)
        assert (await driver.status(jobs[4])).json()["queue_position"] == 0


async def test_cancel_a_queued_job(driver: Driver, clock: FakeClock) -> None:
    jobs = [driver.job_id(await driver.submit()) for _ in range(3)]
    clock.advance(2)
    cancelled = await driver.cancel(jobs[2])
    assert cancelled.status_code in (200, 202)
    assert driver.phase(await driver.status(jobs[2])) is Phase.CANCELLED
    clock.advance(1000)
    assert driver.phase(await driver.status(jobs[2])) is Phase.CANCELLED  # terminal absorbs


async def test_a_running_job_cannot_be_cancelled(driver: Driver, clock: FakeClock) -> None:
    job = driver.job_id(await driver.submit())
    clock.advance(10)
    answer = await driver.cancel(job)
    assert not driver.cancelled(answer)  # each provider's exact refusal: its own test file
    assert driver.phase(await driver.status(job)) is Phase.RUNNING


async def test_failed_jobs_say_why(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    app = make_app(lifecycle={"failure_rate": 1.0})
    for cls in DRIVERS.values():
        driver = cls(connect(app))
        job = driver.job_id(await driver.submit())
        clock.advance(100)
        status = await driver.status(job)
        assert driver.phase(status) is Phase.FAILED
        assert "content" in status.text or "internal error" in status.text
        result = await driver.result(job)
        assert driver.phase(result) is Phase.FAILED
        with pytest.raises((KeyError, TypeError)):
            driver.image_urls(result)


async def test_auth_is_required_and_jobs_are_private(
    app: Starlette, connect: Callable[..., Checked]
) -> None:
    for cls in DRIVERS.values():
        owner = cls(connect(app, key="alice"))
        job = owner.job_id(await owner.submit())
        for key in (None, ""):
            anonymous = cls(connect(app, key=key))
            denied = await anonymous.status(job)
            assert denied.status_code == 401
            assert "Authorization" in denied.text
        malformed = await owner.http.get(owner.facts.status.url_path("x"),
                                         headers={"authorization": "Basic abc"})
        assert malformed.status_code == 401 and "Bearer" in malformed.text
        other = await cls(connect(app, key="mallory")).status(job)
        assert other.status_code in (403, 404)  # in the provider's error shape (Checked)
        assert "lighthouse" not in other.text


async def test_only_configured_keys_are_accepted(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked]
) -> None:
    app = make_app(server={"api_keys": ["good"]})
    for cls in DRIVERS.values():
        assert (await cls(connect(app, key="good")).submit()).status_code in (200, 202)
        bad = await cls(connect(app, key="bad")).submit()
        assert bad.status_code in (400, 401) and "invalid API key" in bad.text


async def test_unknown_and_malformed_ids(driver: Driver) -> None:
    missing = await driver.status(driver.facts.unknown_id)
    assert missing.status_code == 404
    for bad in ("x" * 5000, "../../etc/passwd", "%E2%98%83", "img_☃"):
        answer = await driver.status(bad)
        assert answer.status_code in (400, 404), bad


async def test_bad_bodies_get_provider_shaped_4xx(driver: Driver) -> None:
    http = driver.http
    submit = driver.facts.submit
    cases = [
        (b"{not json", "application/json", "not valid JSON"),
        (b"", "application/json", "empty"),
        (b"NaN", "application/json", "NaN"),
        (b"\xff\xfe", "application/json", "UTF-8"),
        (b'{"prompt": "x"}', "text/plain", "Content-Type must be application/json"),
        (b"[1, 2]", "application/json", "type object"),
    ]
    for body, media, text in cases:
        answer = await http.post(submit.path, params=submit.query, content=body,
                                 headers={**submit.headers, "content-type": media})
        assert 400 <= answer.status_code < 500, (body, answer.text)
        assert text in answer.text, (body, answer.text)
    huge = b'{"prompt": "' + b"a" * (2 << 20) + b'"}'
    too_big = await http.post(submit.path, params=submit.query, content=huge,
                              headers={**submit.headers, "content-type": "application/json"})
    assert too_big.status_code == 413 and "limit" in too_big.text


async def test_wrong_method_and_unknown_route(driver: Driver) -> None:
    job = driver.job_id(await driver.submit())
    answer = await driver.http.put(driver.facts.status.url_path(job))
    assert answer.status_code == 405 and "GET" in answer.headers["allow"]
    assert (await driver.http.get("/v1/nothing-here")).status_code == 404


async def test_expiry_then_eviction(driver: Driver, clock: FakeClock, app: Starlette) -> None:
    job = driver.job_id(await driver.submit())
    clock.advance(100)
    urls = driver.image_urls(await driver.result(job))
    retention = app.state.wanmock.dialects[driver.provider].retention
    clock.advance(retention)
    expired = await driver.status(job)  # said as a phase, or as a not-found saying why
    if expired.status_code == 200:
        assert driver.phase(expired) is Phase.EXPIRED
    else:
        assert expired.status_code == 404 and "expired" in expired.text
    png = await driver.http.get(urls[0])
    assert png.status_code == 403 and b"Request has expired" in png.content
    clock.advance(86_400)
    await driver.submit()  # eviction happens lazily on writes
    assert (await driver.status(job)).status_code == 404


async def test_same_seed_and_prompt_same_pixels(driver: Driver, clock: FakeClock) -> None:
    ids = [driver.job_id(await driver.submit(driver.seeded(7))) for _ in range(2)]
    other = driver.job_id(await driver.submit(driver.seeded(8)))
    clock.advance(500)
    pngs = []
    for job in [*ids, other]:
        (url,) = driver.image_urls(await driver.result(job))
        pngs.append((await driver.http.get(url)).content)
    assert pngs[0] == pngs[1] != pngs[2]


async def test_tampered_or_unknown_artifact_urls(driver: Driver, clock: FakeClock) -> None:
    job = driver.job_id(await driver.submit())
    clock.advance(100)
    (url,) = driver.image_urls(await driver.result(job))
    tampered = url.replace("X-Amz-Expires=", "X-Amz-Expires=9")
    answer = await driver.http.get(tampered)
    assert answer.status_code == 403 and b"SignatureDoesNotMatch" in answer.content
    assert (await driver.http.get(url.replace("/0.png", "/5.png"))).status_code == 403


def test_checked_client_catches_a_schema_break() -> None:
    """The response hook used by every test really fails on a wrong body."""
    request = httpx.Request("GET", "http://127.0.0.1:8000/v1/requests/r/status")
    response = httpx.Response(200, json={"request_id": "r", "status": "done"}, request=request)
    from wanmock.contracts.responses import response_problems

    (problem,) = response_problems(response)
    assert "status must be one of" in problem.message and problem.schema == "runcomfy/status"


async def test_head_answers_as_get_without_the_body(driver: Driver, clock: FakeClock) -> None:
    """RFC 9110 §9.3.2: HEAD on every GET endpoint (status, result, an image) is the GET's
    status and headers with no body; it was 405."""
    job = driver.job_id(await driver.submit())
    clock.advance(3600)
    polled = await driver.status(job)
    urls = [str(polled.request.url)]
    if driver.facts.result is not None:
        urls.append(str((await driver.result(job)).request.url))
    urls.append(driver.image_urls(await driver.result(job))[0])
    for url in urls:
        got = await driver.http.get(url)
        head = await driver.http.head(url)
        assert (head.status_code, head.content) == (got.status_code, b""), url
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == str(len(got.content))
