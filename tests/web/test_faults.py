"""Each fault, scripted through the admin API and seen by a client over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from wanmock.contracts.drivers import DRIVERS, Driver
from wanmock.contracts.responses import response_problems
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.web.serve import LiveServer

pytestmark = pytest.mark.anyio


@pytest.fixture(params=sorted(DRIVERS))
def raw(request: pytest.FixtureRequest, app: Starlette,
        connect: Callable[..., Checked]) -> Driver:
    """A driver whose responses are not schema-checked (faults corrupt them on purpose)."""
    return DRIVERS[request.param](connect(app, checked=False))


async def script(http: httpx.AsyncClient, *responses: object, **scope: str) -> None:
    answer = await http.post("/__admin/script", json={"responses": list(responses), **scope})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_http_errors_in_the_providers_shape(raw: Driver, status: int) -> None:
    job = raw.job_id(await raw.submit())
    await script(raw.http, f"http-{status}", provider=raw.provider, operation="status")
    answer = await raw.status(job)
    assert answer.status_code == status
    assert not response_problems(answer)  # in the provider's own error shape
    assert f"http-{status}" in answer.text
    assert (await raw.status(job)).status_code == 200  # scripted once only


async def test_429_and_503_carry_retry_after(raw: Driver) -> None:
    await script(raw.http, {"fault": "http-429", "retry_after": 7},
                 {"fault": "http-503", "retry_after": 3}, operation="submit")
    limited = await raw.submit()
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    unavailable = await raw.submit()
    assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "3"
    accepted = await raw.submit()
    assert accepted.status_code in (200, 202)


@pytest.mark.parametrize(("given", "said"), [(2.5, "3"), (3.3, "4"), (0.2, "1"), (7.0, "7")])
async def test_a_fractional_retry_after_is_said_rounded_up(raw: Driver, given: float,
                                                          said: str) -> None:
    """A client that waits exactly what it is told must not come back early (40.4 s was said
    as 40, then the journal judged the obedient client against 40.4)."""
    await script(raw.http, {"fault": "http-429", "retry_after": given}, operation="submit")
    assert (await raw.submit()).headers["retry-after"] == said


async def test_a_client_obeying_a_rate_limit_window_to_the_second_is_not_refused_again(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    from wanmock.contracts import assertions

    app = make_app(rate_limit={"poll": "2/60"})
    driver = DRIVERS["therouter"](connect(app))
    job = driver.job_id(await driver.submit())
    clock.advance(0.6)  # the window's end is not a whole number of seconds away
    statuses = []
    for _ in range(4):
        answer = await driver.status(job)
        statuses.append(answer.status_code)
        clock.advance(float(answer.headers["retry-after"]) if answer.status_code == 429 else 5)
    assert statuses == [200, 200, 429, 200]
    assertions.assert_honoured_retry_after(app.state.wanmock.journal)


async def test_an_error_fault_on_submit_creates_no_job(raw: Driver, app: Starlette) -> None:
    await script(raw.http, "http-502", operation="submit")
    assert (await raw.submit()).status_code == 502
    assert len(app.state.wanmock.state) == 0


@pytest.mark.parametrize("fault", ["malformed-json", "truncated-json", "empty-body"])
async def test_corrupted_bodies_after_the_real_work(raw: Driver, app: Starlette,
                                                     fault: str) -> None:
    await script(raw.http, fault, operation="submit")
    answer = await raw.submit()
    assert answer.status_code in (200, 202)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)
    assert len(app.state.wanmock.state) == 1  # the job exists; its answer was lost


async def test_timeout_holds_the_response_until_time_passes(raw: Driver, clock: FakeClock) -> None:
    job = raw.job_id(await raw.submit())
    await script(raw.http, "timeout", operation="status")
    pending = asyncio.create_task(raw.status(job))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not pending.done()
    clock.advance(299)
    await asyncio.sleep(0)
    assert not pending.done()
    clock.advance(1)
    assert (await pending).status_code == 200


async def test_latency_per_endpoint(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(latency={"status": "fixed(2)"}))
    driver = DRIVERS["runcomfy"](http)
    job = driver.job_id(await driver.submit())  # submit has no latency
    pending = asyncio.create_task(driver.status(job))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not pending.done()
    clock.advance(2)
    answer = await pending
    assert answer.json()["status"] == "in_queue"  # as at its arrival: one instant per request


async def test_rule_503_only_while_running_and_429_on_submit_only(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    app = make_app(faults={"rules": [
        {"fault": "http-503", "rate": 1.0, "operation": "status", "phase": "running"},
        {"fault": "http-429", "rate": 1.0, "operation": "submit", "provider": "therouter"},
    ]})
    runcomfy = DRIVERS["runcomfy"](connect(app))
    job = runcomfy.job_id(await runcomfy.submit())
    assert (await runcomfy.status(job)).status_code == 200  # queued
    clock.advance(10)
    assert (await runcomfy.status(job)).status_code == 503  # running
    assert (await runcomfy.result(job)).status_code == 200  # only status polls
    clock.advance(100)
    assert (await runcomfy.status(job)).status_code == 200  # done
    therouter = DRIVERS["therouter"](connect(app))
    assert (await therouter.submit()).status_code == 429


async def test_download_faults_are_s3_shaped(raw: Driver, clock: FakeClock) -> None:
    job = raw.job_id(await raw.submit())
    clock.advance(100)
    (url,) = raw.image_urls(await raw.result(job))
    await script(raw.http, "http-503", operation="download")
    answer = await raw.http.get(url)
    assert answer.status_code == 503 and b"<Code>ServiceUnavailable</Code>" in answer.content


def test_drop_closes_the_connection_mid_response() -> None:
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 5}), clock=clock)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        http.post("/__admin/script", json={"responses": ["drop"], "operation": "submit"})
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/v1/models/wan-ai/wan-2-2/flash/text-to-image", json={"prompt": "x"},
                      headers={"authorization": "Bearer k"})
        after = http.post("/v1/models/wan-ai/wan-2-2/flash/text-to-image", json={"prompt": "x"},
                          headers={"authorization": "Bearer k"})
        assert after.status_code == 200
        entries = http.get("/__admin/journal").json()["entries"]
        assert [e["fault"] for e in entries] == ["drop", None]


async def test_script_validation(http: Checked) -> None:
    for body, text in [
        ({"responses": ["http-530"]}, "did you mean 'http-50"),
        ({"responses": []}, "non-empty list"),
        ({"responses": ["drop"], "operation": "poll"}, "operation: unknown value 'poll'"),
        ({"responses": ["drop"], "provider": "openai"}, "provider must be one of"),
        ({"responses": [{"fault": "http-429", "retry_after": "soon"}]}, "retry_after must be"),
    ]:
        answer = await http.post("/__admin/script", json=body)
        assert answer.status_code == 400 and text in answer.json()["error"], answer.text
