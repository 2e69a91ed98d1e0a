"""Image downloads: drawn off the event loop, once per distinct image."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from PIL import ImageOps

from tests.conftest import Checked
from wanmock.contracts.drivers import DRIVERS
from wanmock.server import FakeClock

pytestmark = pytest.mark.anyio


class LoopWatch:
    """Counts turns of the event loop; a drawing thread can wait for the loop to move on."""

    def __init__(self) -> None:
        self.turns = 0
        self.moved = threading.Condition()
        self.done = False

    async def tick(self) -> None:
        while not self.done:
            with self.moved:
                self.turns += 1
                self.moved.notify_all()
            await asyncio.sleep(0)

    def loop_kept_turning(self) -> bool:
        """Called while an image is being drawn: does the event loop run meanwhile?

        If the drawing blocks the loop, the turns cannot advance and this gives up after 0.5 s
        of real time (a bound for a failing run, not a simulated wait)."""
        with self.moved:
            start = self.turns
            return self.moved.wait_for(lambda: self.turns >= start + 3, timeout=0.5)


def watch_drawing(monkeypatch: pytest.MonkeyPatch, watch: LoopWatch) -> list[bool]:
    """Every image drawn records whether the event loop kept turning during the drawing."""
    original = ImageOps.colorize
    seen: list[bool] = []

    def colorize(*args: Any, **kw: Any) -> Any:
        seen.append(watch.loop_kept_turning())
        return original(*args, **kw)

    monkeypatch.setattr(ImageOps, "colorize", colorize)
    return seen


async def image_urls(http: Checked, clock: FakeClock, prompts: list[str],
                     provider: str) -> list[str]:
    driver = DRIVERS[provider](http)
    jobs = [driver.job_id(await driver.submit(driver.valid_body(prompt=p))) for p in prompts]
    clock.advance(3600)
    return [driver.image_urls(await driver.result(job))[0] for job in jobs]


@pytest.mark.parametrize("provider", sorted(DRIVERS))
async def test_eight_large_images_render_while_the_loop_keeps_serving(
    connect: Callable[..., Checked], make_app: Callable[..., Any], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch, provider: str,
) -> None:
    http = connect(make_app(lifecycle={"concurrency": 8}))
    urls = await image_urls(http, clock, [f"lighthouse {i}" for i in range(8)], provider)
    watch = LoopWatch()
    drawn = watch_drawing(monkeypatch, watch)
    ticker = asyncio.create_task(watch.tick())
    answers = await asyncio.gather(*(http.get(url, headers={"authorization": ""})
                                     for url in urls))
    watch.done = True
    await ticker
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.content for a in answers}) == 8
    assert drawn == [True] * 8, "the event loop stalled while a PNG was drawn"


async def test_identical_downloads_share_one_drawing(
    connect: Callable[..., Checked], make_app: Callable[..., Any], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http = connect(make_app())
    (url,) = await image_urls(http, clock, ["one lighthouse"], sorted(DRIVERS)[0])
    watch = LoopWatch()
    drawn = watch_drawing(monkeypatch, watch)
    ticker = asyncio.create_task(watch.tick())
    answers = await asyncio.gather(*(http.get(url, headers={"authorization": ""})
                                     for _ in range(8)))
    watch.done = True
    await ticker
    assert len(drawn) == 1
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
