"""Per-job scenarios chosen with the X-Wanmock-Scenario header at submit."""

from __future__ import annotations

import pytest

from wanmock.contracts.drivers import Driver
from wanmock.server import FakeClock, Phase

pytestmark = pytest.mark.anyio


async def submit(driver: Driver, scenario: str) -> str:
    answer = await driver.submit(headers={"X-Wanmock-Scenario": scenario})
    assert answer.status_code in (200, 202), answer.text
    return driver.job_id(answer)


async def test_fail_after_three_polls(driver: Driver) -> None:
    job = await submit(driver, "fail-after-3-polls")
    phases = [driver.phase(await driver.status(job)) for _ in range(4)]
    assert phases[:2] != [Phase.FAILED, Phase.FAILED]
    assert phases[2:] == [Phase.FAILED, Phase.FAILED]


async def test_succeed_after_two_polls_even_when_failures_are_configured(
    driver: Driver,
) -> None:
    job = await submit(driver, "succeed-after-2-polls")
    assert driver.phase(await driver.status(job)) is not Phase.SUCCEEDED
    assert driver.phase(await driver.status(job)) is Phase.SUCCEEDED


async def test_fail_after_seconds_with_moderation(driver: Driver, clock: FakeClock) -> None:
    job = await submit(driver, "fail-moderation,fail-after-20s,queue-1s")
    clock.advance(20.9)
    assert driver.phase(await driver.status(job)) is Phase.RUNNING
    clock.advance(0.1)
    status = await driver.status(job)
    assert driver.phase(status) is Phase.FAILED
    assert "inappropriate" in status.text


async def test_cancel_after_and_expire_after(driver: Driver, clock: FakeClock) -> None:
    cancelled = await submit(driver, "cancel-after-30s")
    expiring = await submit(driver, "expire-after-60s")
    clock.advance(30)
    assert driver.phase(await driver.status(cancelled)) is Phase.CANCELLED
    clock.advance(30)
    answer = await driver.status(expiring)  # said as a phase, or as a not-found saying why
    if answer.status_code == 200:
        assert driver.phase(answer) is Phase.EXPIRED
    else:
        assert answer.status_code == 404 and "expired" in answer.text


async def test_long_queue_positions_shrink(driver: Driver, clock: FakeClock) -> None:
    job = await submit(driver, "queue-250")
    if "queue_position" in (await driver.status(job)).text:  # where a provider shows it
        assert (await driver.status(job)).json()["queue_position"] == 250
        clock.advance(200)
        assert (await driver.status(job)).json()["queue_position"] == 150
    clock.advance(1000)
    assert driver.phase(await driver.status(job)) is not Phase.QUEUED


async def test_stuck_running_never_finishes(driver: Driver, clock: FakeClock) -> None:
    job = await submit(driver, "stuck-running")
    clock.advance(12 * 3600)
    assert driver.phase(await driver.status(job)) is Phase.RUNNING


async def test_unknown_scenario_is_a_4xx_naming_the_header(driver: Driver) -> None:
    answer = await driver.submit(headers={"X-Wanmock-Scenario": "explode"})
    assert answer.status_code in (400, 422)
    assert "X-Wanmock-Scenario" in answer.text and "fail-after-<N>-polls" in answer.text


async def test_partial_failure_of_every_image_fails_the_job(driver: Driver,
                                                           clock: FakeClock) -> None:
    lost = await submit(driver, "partial-fail-1")  # the default body asks for one image
    kept = await submit(driver, "partial-fail-0")
    clock.advance(100)
    assert driver.phase(await driver.status(lost)) is Phase.FAILED
    assert driver.phase(await driver.status(kept)) is Phase.SUCCEEDED
    assert len(driver.image_urls(await driver.result(kept))) == 1
