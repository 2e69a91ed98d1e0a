"""What only a shared state does: workers agreeing on identity and time, and a Redis outage
answered as the provider's 503."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from wanmock.server import Config, create_app
from wanmock.server.clock import FakeClock, RealClock
from wanmock.server.errors import ConfigError, StateUnavailable
from wanmock.server.state.redis import RedisState, SharedFakeClock
from wanmock.server.state.redis_codec import decode_record, encode_record

from .clients import FACTS, status_url, submit_args
from .conftest import RedisServer
from .test_conformance import T0, _record

pytestmark = pytest.mark.anyio


def test_a_record_survives_its_encoding() -> None:
    record = _record("a", start=T0)
    stored = encode_record(record)
    assert decode_record(stored, repr(record.start_at), repr(record.end_at), "") == record
    assert decode_record(stored, "inf", "inf", "") != record


async def test_workers_of_a_namespace_share_identity_and_draw_different_ids(
        redis_url: str, namespace: str) -> None:
    one = RedisState(redis_url, namespace=namespace, seed=1)
    two = RedisState(redis_url, namespace=namespace, seed=1)
    other = RedisState(redis_url, namespace=namespace + "x", seed=1)
    try:
        assert one.identity == two.identity and one.identity.tag != other.identity.tag
        assert one.rng.random() != two.rng.random()
    finally:
        for state in (one, two, other):
            await state.close()


async def test_a_fake_clock_advanced_through_one_worker_moves_every_worker(
        redis_url: str, namespace: str) -> None:
    one = RedisState(redis_url, namespace=namespace, fake_clock=True)
    two = RedisState(redis_url, namespace=namespace, fake_clock=True)
    try:
        assert isinstance(one.clock, SharedFakeClock) and isinstance(two.clock, SharedFakeClock)
        start = one.clock.now()
        assert two.clock.now() == start
        await one.clock.move(30)
        assert one.clock.now() == start + 30 and two.clock.now() == start  # not read yet
        await two.preset()  # what every request does first
        assert two.clock.now() == start + 30
        with pytest.raises(ValueError, match="backwards"):
            await two.clock.move(-1)
        # A worker waiting on the clock (a sync-mode submit) wakes without a request of its own.
        waiting = asyncio.ensure_future(two.clock.sleep_until(start + 40))
        await asyncio.sleep(0)
        assert not waiting.done()
        await one.clock.move(10)
        await asyncio.wait_for(waiting, 5)  # the publish reaches it; bounded, not a sleep
        assert two.clock.now() == start + 40
    finally:
        await one.close()
        await two.close()


async def test_a_real_clock_is_anchored_once_and_workers_agree(redis_url: str,
                                                              namespace: str) -> None:
    one = RedisState(redis_url, namespace=namespace, time_scale=10)
    two = RedisState(redis_url, namespace=namespace, time_scale=10)
    try:
        assert isinstance(one.clock, RealClock) and one.clock.scale == 10
        assert abs(one.clock.now() - two.clock.now()) < 0.5  # 10x real time: 50 ms of skew
        with pytest.raises(ConfigError, match="--fake-clock"):
            RedisState(redis_url, namespace=namespace, fake_clock=True)
    finally:
        await one.close()
        await two.close()


async def test_redis_stopped_is_a_503_with_retry_after_then_it_recovers(
        new_redis: Callable[..., RedisServer], namespace: str) -> None:
    server = new_redis()
    config = Config().replace(server={"state": server.url + "?socket_timeout=0.2",
                                      "namespace": namespace, "fake_clock": True})
    app = create_app(config)
    rt = app.state.wanmock
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000",
                                 headers={"authorization": "Bearer k"}) as client:
        submitted = await client.request(**submit_args())
        assert submitted.status_code < 300, submitted.text
        job_id = FACTS.job_id(submitted.json())
        server.pause()
        try:
            down = await client.get(status_url(job_id))
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
            assert "Redis" in down.text
            health = await client.get("/__admin/health")
            assert health.status_code == 503 and health.json()["status"] == "state unavailable"
        finally:
            server.resume()
        back = await client.get(status_url(job_id))
        assert back.status_code == 200 and FACTS.job_id(back.json()) == job_id
        assert (await client.get("/__admin/health")).json()["status"] == "ok"
    await rt.state.close()


def test_no_redis_at_start_is_the_domain_error_naming_it(namespace: str) -> None:
    with pytest.raises(StateUnavailable, match="Redis"):
        RedisState("unix:///nonexistent/redis.sock", namespace=namespace, clock=FakeClock())


async def test_with_aof_jobs_survive_a_redis_restart(new_redis: Callable[..., RedisServer],
                                                     namespace: str) -> None:
    server = new_redis(appendonly=True)
    state = RedisState(server.url, namespace=namespace, clock=FakeClock(T0))
    created = await state.create(_record("kept", start=T0), None, T0)
    assert created.stored is not None
    server.stop()  # SIGTERM: Redis writes its append-only file out
    with pytest.raises(StateUnavailable):
        await state.read("kept", T0)
    server.start()
    again = RedisState(server.url, namespace=namespace, clock=FakeClock(T0))
    try:
        for reader in (state, again):  # the old state reconnects (and reloads its scripts)
            read = (await reader.read("kept", T0)).stored
            assert read is not None and read.record == created.stored.record
        assert again.identity == state.identity
    finally:
        await state.close()
        await again.close()
