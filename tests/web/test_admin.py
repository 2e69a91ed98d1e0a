from __future__ import annotations

import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from wanmock.server import FakeClock

pytestmark = pytest.mark.anyio


async def test_reset_forgets_jobs_journal_and_scripts(http: Checked, app: Starlette,
                                                      clock: FakeClock) -> None:
    first = (await http.post("/v1/models/wan-ai/wan-2-2/flash/text-to-image",
                             json={"prompt": "x"})).json()["request_id"]
    await http.post("/__admin/script", json={"responses": ["http-500"]})
    answer = await http.post("/__admin/reset")
    assert answer.json()["reset"] is True
    health = (await http.get("/__admin/health")).json()
    assert health["jobs"] == 0 and health["journal"]["total"] == 0
    assert (await http.get("/__admin/script")).json() == {"scripted": {}}
    assert (await http.get(f"/v1/requests/{first}/status")).status_code == 404
    again = (await http.post("/v1/models/wan-ai/wan-2-2/flash/text-to-image",
                             json={"prompt": "x"})).json()["request_id"]
    assert again == first  # reseeded: the same sequence gives the same ids


async def test_admin_paths_never_collide_with_provider_paths(app: Starlette) -> None:
    from wanmock.server.dialects import default_registry

    for dialect in default_registry():
        for route in dialect.routes:
            assert not route.path.startswith("/__admin")
            assert route.path.startswith(dialect.path_prefixes)


async def test_journal_query_validation(http: Checked) -> None:
    assert (await http.get("/__admin/journal", params={"limit": "x"})).status_code == 400
    none = await http.get("/__admin/journal", params={"limit": "0"})  # was: every entry
    assert none.status_code == 400 and "from 1" in none.json()["error"]
    for path, name in (("/__admin/journal", "limit"), ("/__admin/journal/jobs", "job_id"),
                       ("/__admin/journal/keys", "key")):
        twice = await http.get(path, params=[(name, "1"), (name, "2")])
        assert twice.status_code == 400 and "given 2 times" in twice.json()["error"], path
    missing = await http.get("/__admin/journal/jobs", params={"job_id": "nope"})
    assert missing.status_code == 404


@pytest.mark.parametrize("headers", [{"host": "[zz"}, {"host": "[::1"},
                                     {"origin": "http://[zz"}, {"origin": "http://]"}])
async def test_an_unreadable_host_or_origin_is_refused_not_a_500(
        http: Checked, headers: dict[str, str]) -> None:
    answer = await http.get("/__admin/health", headers=headers)
    assert answer.status_code == 403 and "admin API" in answer.json()["error"]


@pytest.mark.parametrize("provider", [["therouter"], {"a": 1}, 5])
async def test_a_scripted_provider_that_is_not_a_name_is_a_400(http: Checked,
                                                              provider: object) -> None:
    answer = await http.post("/__admin/script", json={"provider": provider, "responses": ["pass"]})
    assert answer.status_code == 400 and "provider must be one of" in answer.json()["error"]


async def test_the_clock_cannot_be_advanced_past_the_dates_the_fake_can_write(
        http: Checked) -> None:
    job = (await http.post("/v1/models/wan-ai/wan-2-2/flash/text-to-image",
                           json={"prompt": "x"})).json()["request_id"]
    refused = await http.post("/__admin/clock/advance", json={"seconds": 300_000_000_000})
    assert refused.status_code == 400 and "year 9000" in refused.json()["error"]
    assert (await http.post("/__admin/clock/advance", json={"seconds": 3600})).status_code == 200
    assert (await http.get(f"/v1/requests/{job}/result")).status_code == 200
