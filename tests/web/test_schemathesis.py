"""Schemathesis, an independent API fuzzer, against the fake's own /openapi.json.

Every check Schemathesis has is on: server errors, status codes and content types the spec does
not document, response bodies and headers against their schemas, negative data accepted, missing
or invalid auth accepted. The fake accepts only its configured key here, as a real provider does.
Bounded by the Hypothesis profile (``dev`` in ``make test``, ``ci`` in ``make test-props``).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, assume, settings

from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import default_registry

KEY = "schemathesis-key"
APP = create_app(Config().replace(server={"seed": 11, "api_keys": [KEY]}), clock=FakeClock())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
#: Headers that switch a provider's protocol, at their first documented value: without them a
#: submit may be a synchronous call, which waits on this app's fake clock (nobody advances it).
PROTOCOL = {name: str(spec["enum"][0]) for dialect in default_registry()
            for route in dialect.routes for name, (spec, _) in route.headers.items()
            if "enum" in spec}


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_the_fake_survives_schemathesis(case: schemathesis.Case) -> None:
    # A query parameter whose value is an empty list or None is not on the wire at all: a case
    # made negative by such an "unknown parameter" sends a valid request and would call its
    # acceptance a fault (seen in CI: ``{'api_key_id': ..., '<random name>': []}``).
    assume(not any(value in ([], None) for value in (case.query or {}).values()))
    # A path parameter that is empty or a dot segment is removed by the client's URL
    # normalisation: the request goes to another path, not to this operation.
    assume(not any(str(value) in ("", ".", "..")
                   for value in (case.path_parameters or {}).values()))
    given = {name.lower() for name in case.headers or {}}
    missing = {name: value for name, value in PROTOCOL.items() if name.lower() not in given}
    case.call_and_validate(headers={**missing, "Authorization": f"Bearer {KEY}"})
