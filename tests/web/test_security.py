"""Issue 11's secrets and limits: the admin API's trust rules, URLs built from Host headers,
ids that tell a typo from another run, clients that leave, and unauthenticated garbage."""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import BASE_URL, Checked
from wanmock.contracts.drivers import DRIVERS, Driver
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.state import MemoryState

pytestmark = pytest.mark.anyio
PROVIDERS = sorted(DRIVERS)


def raw_client(app: Starlette, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                             headers=headers)


@pytest.mark.parametrize(("headers", "status"), [
    ({"origin": "http://evil.example", "content-type": "text/plain"}, 403),  # a form post
    ({"host": "evil.example:8000"}, 403),  # DNS rebinding: the name points at 127.0.0.1
    ({"sec-fetch-site": "cross-site"}, 403),
    ({"origin": "http://127.0.0.1:8000"}, 200),  # the dashboard, same origin
    ({"sec-fetch-site": "same-origin"}, 200),
    ({}, 200),  # curl, with its default content type and no body
    ({"content-type": "application/x-www-form-urlencoded"}, 200),
])
async def test_the_admin_api_refuses_cross_site_requests(app: Starlette,
                                                         headers: dict[str, str],
                                                         status: int) -> None:
    async with raw_client(app) as http:
        answer = await http.post("/__admin/reset", headers=headers)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert "admin token" in answer.json()["error"]


async def test_a_token_opens_the_admin_api_from_anywhere_and_nothing_else_does(
    make_app: Callable[..., Starlette],
) -> None:
    app = make_app(server={"admin_token": "s3cret"})
    cross = {"origin": "http://evil.example", "host": "wanmock.internal"}
    async with raw_client(app, authorization="Bearer s3cret", **cross) as http:
        assert (await http.post("/__admin/reset")).status_code == 200
    for wrong in ("Bearer s3cre", "Bearer s3cret2", "s3cret", "Bearer ключ"):
        async with raw_client(app) as http:
            answer = await http.post("/__admin/reset", headers={"authorization": wrong.encode()})
            assert answer.status_code == 401


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_urls_never_carry_a_forged_host(app: Starlette, provider: str) -> None:
    async with raw_client(app, authorization="Bearer k") as http:
        driver = DRIVERS[provider](http)
        forged = await driver.submit(headers={"host": 'evil"<x>'})
        assert forged.status_code < 300
        assert "evil" not in forged.text and "<x>" not in forged.text
        fine = await driver.submit(headers={"host": "wanmock.test:9000"})
        urls = [v for v in fine.json().values() if isinstance(v, str) and "://" in v]
        assert all(url.startswith("http://wanmock.test:9000/") for url in urls)


async def test_the_outage_presets_artifact_503s_carry_retry_after(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock,
) -> None:
    app = make_app()
    http = connect(app)
    driver: Driver = DRIVERS[PROVIDERS[0]](http)
    job = driver.job_id(await driver.submit())
    clock.advance(3600)
    url = driver.image_urls(await driver.result(job))[0]
    await http.post("/__admin/presets", json={"name": "outage"})
    answer = await http.get(url, headers={"authorization": ""})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
    assert answer.headers["content-type"] == "application/xml"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_id_of_another_run_is_not_a_typo(provider: str) -> None:
    """Two runs (two states), one id: the second run says where the id came from."""
    config = Config().replace(server={"seed": 1})
    first = create_app(config, state=MemoryState(FakeClock()))
    second = create_app(config, state=MemoryState(FakeClock()))
    async with raw_client(first, authorization="Bearer k") as http:
        job = DRIVERS[provider](http).job_id(await DRIVERS[provider](http).submit())
    async with raw_client(second, authorization="Bearer k") as http:
        driver = DRIVERS[provider](http)
        restarted = await driver.status(job)
        typo = await driver.status(job[:-3] + ("aaa" if job[-3:] != "aaa" else "bbb"))
        await http.post("/__admin/reset")
        mine = driver.job_id(await driver.submit())
        await http.post("/__admin/reset")
        forgotten = await driver.status(mine)
    assert "another run of the fake" in restarted.text
    assert "no wanmock server issued this id" in typo.text
    assert "does not exist any more" in forgotten.text
    assert {restarted.status_code, typo.status_code, forgotten.status_code} <= {200, 400, 404}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_id_in_the_wrong_case_is_a_typo_not_a_forgotten_job(app: Starlette,
                                                                     provider: str) -> None:
    """Ids are case-sensitive; TheRouter's decoded case-blind and called it evicted."""
    async with raw_client(app, authorization="Bearer k") as http:
        driver = DRIVERS[provider](http)
        job = driver.job_id(await driver.submit())
        swapped = job.swapcase().replace("IMG_", "img_")
        answer = await driver.status(swapped)
    assert answer.status_code in (400, 404)
    assert "does not exist any more" not in answer.text
    assert "no wanmock server issued this id" in answer.text or "lower-case UUID" in answer.text


async def test_ids_are_random_without_a_seed_and_reproducible_with_one() -> None:
    ids = []
    for seed in (None, None, 5, 5):
        app = create_app(Config().replace(server={"seed": seed} if seed else {}),
                         clock=FakeClock())
        async with raw_client(app, authorization="Bearer k") as http:
            driver = DRIVERS[PROVIDERS[0]](http)
            ids.append(driver.job_id(await driver.submit()))
    assert ids[0] != ids[1] and ids[2] == ids[3]


async def test_a_client_that_leaves_mid_body_is_no_bug(app: Starlette,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    facts = app.state.wanmock.dialects[PROVIDERS[0]].client
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": facts.submit.path, "raw_path": b"",
        "query_string": "&".join(f"{k}={v}" for k, v in facts.submit.query.items()).encode(),
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer k"),
                    (b"content-type", b"application/json"), (b"content-length", b"100")]}
    messages = [{"type": "http.request", "body": b'{"prompt": "a li', "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.ERROR, logger="wanmock"):
        await app(scope, receive, send)
    assert sent == [] and not caplog.records  # nothing to answer, nothing to log
    (entry,) = app.state.wanmock.journal.entries
    assert entry.status == 499  # journaled as the client's close, not as an answer


async def test_trailing_slashes_are_the_providers_404_not_a_redirect(
    connect: Callable[..., Checked], app: Starlette,
) -> None:
    http = connect(app)  # every answer is checked against the provider's schemas
    for provider in PROVIDERS:
        driver = DRIVERS[provider](http)
        job = driver.job_id(await driver.submit())
        answer = await http.get(driver.facts.status.url_path(job) + "/")
        assert answer.status_code == 404, (provider, answer.status_code)


async def test_retry_after_in_real_seconds_when_asked(make_app: Callable[..., Starlette]) -> None:
    for unit, expected in (("simulated", "5"), ("real", "1")):
        app = create_app(Config().replace(server={"seed": 1, "retry_after": unit,
                                                  "time_scale": 1000}))
        async with raw_client(app, authorization="Bearer k") as http:
            driver = DRIVERS[PROVIDERS[0]](http)
            await http.post("/__admin/script", json={"responses": [
                {"fault": "http-429", "retry_after": 5}]})
            answer = await driver.submit()
        assert answer.status_code == 429 and answer.headers["retry-after"] == expected
        (entry,) = app.state.wanmock.journal.entries
        assert entry.retry_after == 5.0  # judged in simulated time, whatever the header says


async def test_unauthenticated_long_paths_are_not_kept(app: Starlette) -> None:
    """Issue 11: 2000 GETs with distinct 64 KB paths and no key grew the fake by 373 MB.

    Driven at the ASGI level: an HTTP client would keep its own caches of the URLs."""
    prefixes = [p for cls in app.state.wanmock.dialects.values() for p in cls.path_prefixes]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def get(path: str) -> None:
        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                   "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                   "query_string": b"", "root_path": "", "client": ("10.0.0.9", 1),
                   "server": ("127.0.0.1", 8000), "headers": [(b"host", b"127.0.0.1:8000")]},
                  receive, send)

    await get(prefixes[0] + "warm-up")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(2000):
        await get(f"{prefixes[i % len(prefixes)]}{i:05d}" + "x" * 65_536)
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert set(statuses) <= {400, 401, 404}
    assert kept < 4 << 20, f"{kept / 2**20:.1f} MiB kept for 2000 refused requests"
    assert max(len(e.path) for e in app.state.wanmock.journal.entries) <= 257


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_prompts_longer_than_the_fake_keeps_are_refused_naming_the_field(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], provider: str,
) -> None:
    http = connect(make_app(limits={"prompt_chars": 100}))
    driver = DRIVERS[provider](http)
    assert (await driver.submit(driver.valid_body(prompt="x" * 100))).status_code < 300
    answer = await driver.submit(driver.valid_body(prompt="x" * 101))
    assert answer.status_code in (400, 422) and "limits.prompt_chars" in answer.text
    assert ".".join(driver.facts.prompt_field) in answer.text


async def test_a_key_keeps_at_most_its_byte_budget_until_jobs_are_evicted(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock,
) -> None:
    app = make_app(limits={"key_bytes": 20_000}, lifecycle={"evict_after": 0.0})
    http, other = connect(app), connect(app, key="someone-else")
    driver = DRIVERS[PROVIDERS[0]](http)
    accepted = 0
    while (answer := await driver.submit(driver.valid_body(prompt="p" * 750))).status_code < 300:
        accepted += 1
    assert 5 <= accepted <= 7  # ~3 KB kept per job of 750 characters
    assert answer.status_code == 429 and "limits.key_bytes" in answer.text
    assert "retry-after" in answer.headers
    assert (await DRIVERS[PROVIDERS[0]](other).submit()).status_code < 300  # per key
    clock.advance(10 * 86_400)  # expired and evicted: the budget is free again
    assert (await driver.submit(driver.valid_body(prompt="p" * 750))).status_code < 300
