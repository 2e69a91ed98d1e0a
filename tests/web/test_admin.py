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
    missing = await http.get("/__admin/journal/jobs", params={"job_id": "nope"})
    assert missing.status_code == 404
