import pytest
from starlette.applications import Starlette

from tests.conftest import Checked
from wanmock.server.dialects import default_registry

pytestmark = pytest.mark.anyio


async def test_openapi_describes_every_provider_endpoint(http: Checked) -> None:
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    operations = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
    for dialect in default_registry():
        for route in dialect.routes:
            path = route.path.replace(":path", "")
            assert (route.method, path) in operations
    components = document["components"]["schemas"]
    refs = {r for item in document["paths"].values() for op in item.values()
            for r in _refs(op)}
    assert refs and all(ref.removeprefix("#/components/schemas/") in components for ref in refs)
    assert "therouter.job" in components and "$id" not in components["therouter.job"]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_admin_is_loopback_only_or_token(make_app, connect) -> None:  # type: ignore[no-untyped-def]
    app: Starlette = make_app(server={"admin_token": "s3cret"})
    anonymous = await connect(app).get("/__admin/health")
    assert anonymous.status_code == 401
    allowed = await connect(app, key="s3cret").get("/__admin/health")
    assert allowed.status_code == 200 and allowed.json()["status"] == "ok"


async def test_admin_clock_advance(http: Checked, clock) -> None:  # type: ignore[no-untyped-def]
    before = clock.now()
    answer = await http.post("/__admin/clock/advance", json={"seconds": 30})
    assert answer.json() == {"now": before + 30, "fake": True, "scale": None}
    for bad in ({"seconds": -1}, {"seconds": "x"}, {}):
        assert (await http.post("/__admin/clock/advance", json=bad)).status_code == 400
