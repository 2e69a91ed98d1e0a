"""What every registered provider must provide, checked generically over the registry."""

from __future__ import annotations

import pytest

from wanmock import schemas
from wanmock.server import errors
from wanmock.server.dialects import Dialect, default_registry
from wanmock.server.errors import ApiError

REGISTRY = default_registry()
DIALECTS = list(REGISTRY)


def _kinds(cls: type[ApiError] = ApiError) -> set[str]:
    found = set()
    for sub in cls.__subclasses__():
        found.add(sub.kind)
        found |= _kinds(sub)
    return found


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_domain_error_has_an_answer_in_every_dialect(dialect: type[Dialect]) -> None:
    """A new ApiError must be mapped explicitly: no silent default of 400."""
    missing = _kinds() - set(dialect.errors)
    assert not missing, f"{dialect.name} does not map {sorted(missing)}"


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_domain_error_renders_in_the_providers_error_shape(
        dialect: type[Dialect]) -> None:
    samples = [errors.AuthError("no key"), errors.BudgetExceeded("full", retry_after=60),
               errors.RateLimited(5), errors.InjectedFault(503, "down", retry_after=3),
               errors.JobNotFound("x", reason="other-run"), errors.MalformedId("bad id"),
               errors.RouteNotFound("GET", "/x"), errors.MethodNotAllowed("PUT", "/x", ["GET"]),
               errors.BodyTooLarge("big"), errors.MalformedBody("not json"),
               errors.UnsupportedMediaType("text"), errors.JobForbidden("x"),
               errors.NotReady("x", "queued"), errors.NotCancellable("x", "running", ["queued"]),
               errors.SyncTimeout("x", 100, "http://h/x", "submit without waiting"),
               errors.UnknownModel("m", ["n"]),
               errors.InvalidRequest([errors.Violation("prompt", "required", "needed")]),
               errors.StateUnavailable("redis down")]
    assert {e.kind for e in samples} == _kinds(), "a new error kind needs a sample here"
    instance = dialect(dialect.Options())
    for error in samples:
        reply = instance.render_error(error)
        assert 400 <= reply.status < 600, (error.kind, reply.status)
        if reply.schema is not None:
            schemas.validate(reply.schema, reply.body)
        if getattr(error, "retry_after", None) is not None:
            assert "retry-after" in reply.headers, error.kind


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_client_facts_agree_with_the_route_table(dialect: type[Dialect]) -> None:
    facts = dialect.client
    for endpoint in filter(None, (facts.submit, facts.status, facts.cancel, facts.result)):
        path = endpoint.url_path(facts.unknown_id)
        assert any(route.method == endpoint.method and route.pattern.match(path)
                   for route in dialect.routes), (endpoint, dialect.name)
    body = facts.body("a cat")
    assert not schemas.check(facts.request_schema, body)
    assert facts.real_base_url.startswith("https://") and facts.price_per_image > 0


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_an_unavailable_shared_state_is_the_providers_503_with_retry_after(
        dialect: type[Dialect]) -> None:
    reply = dialect(dialect.Options()).render_error(errors.StateUnavailable("redis down"))
    assert reply.status == 503 and reply.headers["retry-after"] == "1"
    bad = dialect(dialect.Options()).render_error(errors.InjectedFault(500, "bug"))
    assert bad.status != 503 and "retry-after" not in bad.headers
