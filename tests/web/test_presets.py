"""Each preset demonstrated by a scripted client over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from tests.support import record_of
from wanmock.contracts.drivers import DRIVERS
from wanmock.server import Config, FakeClock, Phase, create_app
from wanmock.server.presets import PRESETS
from wanmock.server.web.edge import ConnectionDropped

pytestmark = pytest.mark.anyio


@pytest.fixture
def preset_app(clock: FakeClock) -> Callable[[str], Starlette]:
    def factory(name: str) -> Starlette:
        return create_app(Config().replace(server={"seed": 21}).with_preset(name), clock=clock)

    return factory


def test_every_preset_builds_and_is_tested_below() -> None:
    tested = {name.removeprefix("test_").replace("_", "-") for name in globals()
              if name.startswith("test_")}
    for name in PRESETS:
        assert Config().with_preset(name).preset == name
        assert name in tested, f"preset {name} has no test"


async def test_happy(preset_app, connect, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    driver = DRIVERS["therouter"](connect(preset_app("happy")))
    jobs = [driver.job_id(await driver.submit()) for _ in range(2)]
    clock.advance(3 + 180)
    assert {driver.phase(await driver.status(j)) for j in jobs} == {Phase.SUCCEEDED}


async def test_slow(preset_app, connect, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    app = preset_app("slow")
    driver = DRIVERS["runcomfy"](connect(app))
    submitting = __import__("asyncio").create_task(driver.submit())
    await _settle()
    assert not submitting.done()  # responses themselves are slow
    clock.advance(60)
    job = driver.job_id(await submitting)
    record = record_of(app, job)
    assert record.start_at - record.created_at >= 10 and record.end_at - record.start_at >= 60


async def test_flaky(preset_app, connect, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    driver = DRIVERS["runcomfy"](connect(preset_app("flaky"), checked=False))
    codes: list[int] = []
    job = None
    for _ in range(300):
        try:
            answer = await driver.submit() if job is None else await driver.status(job)
        except ConnectionDropped:  # in-process, a dropped connection surfaces as the error
            codes.append(-1)
            continue
        codes.append(answer.status_code)
        if job is None and answer.status_code == 200 and answer.content.endswith(b"}"):
            job = driver.job_id(answer)
    assert 503 in codes and -1 in codes
    assert codes.count(200) > 250


async def test_moderation(preset_app, connect, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    driver = DRIVERS["therouter"](connect(preset_app("moderation")))
    job = driver.job_id(await driver.submit())
    clock.advance(200)
    body = (await driver.status(job)).json()
    assert body["status"] == "failed" and body["error"]["code"] == "content_policy_violation"


async def test_rate_limited(preset_app, connect, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    driver = DRIVERS["runcomfy"](connect(preset_app("rate-limited")))
    assert [(await driver.submit()).status_code for _ in range(3)] == [200, 200, 429]
    limited = await driver.submit()
    assert limited.json()["error_code"] == 429001
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    clock.advance(int(limited.headers["retry-after"]))
    assert (await driver.submit()).status_code == 200


async def test_outage(preset_app, connect) -> None:  # type: ignore[no-untyped-def]
    for cls in DRIVERS.values():
        answer = await cls(connect(preset_app("outage"))).submit()
        assert answer.status_code == 503 and answer.headers["retry-after"] == "30"


async def test_congested(preset_app, connect, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    driver = DRIVERS["runcomfy"](connect(preset_app("congested")))
    job = driver.job_id(await driver.submit())
    first = (await driver.status(job)).json()["queue_position"]
    clock.advance(100)
    later = (await driver.status(job)).json()["queue_position"]
    assert first == 300 and later == 250
    clock.advance(600)
    assert driver.phase(await driver.status(job)) is Phase.RUNNING


async def test_stuck(preset_app, connect, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    driver = DRIVERS["therouter"](connect(preset_app("stuck")))
    job = driver.job_id(await driver.submit())
    clock.advance(6 * 86_400)
    assert driver.phase(await driver.status(job)) is Phase.QUEUED
    clock.advance(86_400)
    assert driver.phase(await driver.status(job)) is Phase.EXPIRED


async def test_switching_preset_at_runtime(http: Checked, app: Starlette) -> None:
    listing = (await http.get("/__admin/presets")).json()
    assert listing["current"] is None and "flaky" in listing["presets"]
    switched = await http.post("/__admin/presets", json={"name": "outage"})
    assert switched.json()["current"] == "outage"
    answer = await http.post("/v1/images/generations?async=true",
                             json={"model": "wan/wan2.2-t2i-flash", "prompt": "x"})
    assert answer.status_code == 503
    typo = await http.post("/__admin/presets", json={"name": "outages"})
    assert typo.status_code == 400 and "did you mean 'outage'" in typo.json()["error"]


async def _settle() -> None:
    import asyncio

    for _ in range(50):
        await asyncio.sleep(0)
