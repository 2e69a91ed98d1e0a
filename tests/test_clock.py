import asyncio

import pytest

from wanmock.server.clock import FakeClock, RealClock

pytestmark = pytest.mark.anyio


def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock(start=100.0)
    assert clock.now() == 100.0
    clock.advance(2.5)
    clock.set(110.0)
    assert clock.now() == 110.0


@pytest.mark.parametrize("bad", [lambda c: c.advance(-1), lambda c: c.set(99.0)])
def test_fake_clock_refuses_to_go_backwards(bad) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock(start=100.0)
    with pytest.raises(ValueError, match="backwards"):
        bad(clock)
    assert clock.now() == 100.0


async def test_sleepers_wake_in_deadline_order_when_time_passes() -> None:
    clock = FakeClock(start=0.0)
    woke: list[float] = []

    async def sleeper(t: float) -> None:
        await clock.sleep_until(t)
        woke.append(t)

    tasks = [asyncio.create_task(sleeper(t)) for t in (30.0, 10.0, 20.0)]
    await asyncio.sleep(0)
    assert clock.pending == 3
    clock.advance(15)
    await asyncio.sleep(0)
    assert woke == [10.0]
    clock.advance(100)
    await asyncio.gather(*tasks)
    assert woke == [10.0, 20.0, 30.0]
    assert clock.pending == 0


async def test_sleep_until_the_past_returns_at_once_and_cancel_forgets_waiter() -> None:
    clock = FakeClock(start=50.0)
    await clock.sleep_until(10.0)
    task = asyncio.create_task(clock.sleep_until(60.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending == 0


def test_real_clock_scales_time(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([1000.0, 1000.5])
    monkeypatch.setattr("wanmock.server.clock.time.monotonic", lambda: next(ticks))
    clock = RealClock(scale=1000, start=0.0)
    assert clock.now() == pytest.approx(500.0)  # half a real second = 500 simulated seconds


def test_real_clock_rejects_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        RealClock(scale=0)
