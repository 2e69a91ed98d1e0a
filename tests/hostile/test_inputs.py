"""The bad-input matrix: every provider endpoint, every kind of hostile input, zero 5xx.

Endpoints, fields and parameters are read from the dialects' route tables
(``default_registry()``, each dialect's ``routes``, their request schemas), so a new provider or
endpoint is covered without touching this file. Each case asserts what a client may rely on:
no 5xx, a body that is the provider's own shape (``response_problems``), a 4xx where the input
cannot be valid, and the offending field named where there is one.

In process: ``httpx.ASGITransport(raise_app_exceptions=False)`` turns an unhandled exception
into the 500 a real server would send, so a crash is a failed assertion, not an error.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from wanmock import schemas
from wanmock.contracts.drivers import DRIVERS
from wanmock.contracts.responses import response_problems
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import Route, default_registry
from wanmock.server.scenarios import HEADER as SCENARIO_HEADER
from wanmock.server.vocab import Operation

pytestmark = pytest.mark.anyio

BASE_URL = "http://127.0.0.1:8000"
KEY = "Bearer hostile-key"
ENDPOINTS: list[tuple[str, Route]] = [(cls.name, route) for cls in default_registry()
                                      for route in cls.routes]
_PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")
DEFAULT: Any = object()  # "the valid value" for a body or an Authorization header


@dataclass(frozen=True)
class Case:
    """One hostile request: the endpoint, what differs from a valid request, what must hold."""

    provider: str
    route: Route
    kind: str
    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str | bytes] = field(default_factory=dict)
    #: Raw body bytes (sent as application/json); DEFAULT: the valid body, if the route has one.
    body: Any = DEFAULT
    #: Fields of the valid body (dotted paths) replaced by raw JSON text (huge numbers cannot
    #: be dumped).
    fields: Mapping[str, str] = field(default_factory=dict)
    authorization: Any = DEFAULT
    #: The request cannot be valid: a 4xx is required (else any non-5xx answer will do).
    refused: bool = True
    #: A word the error body must contain (the field, parameter or header at fault).
    names: str | None = None
    #: The request must be routed to ``route`` (not answered as an unknown path).
    own_route: bool = False

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.route.method}:{self.route.path}:{self.kind}"


def body_properties(route: Route) -> Mapping[str, Mapping[str, Any]]:
    """Every property of the route's request body by dotted path, nested objects included."""
    if route.request_schema is None:
        return {}
    found: dict[str, Mapping[str, Any]] = {}

    def walk(schema: Mapping[str, Any], prefix: str) -> None:
        for name, spec in schema.get("properties", {}).items():
            found[prefix + name] = spec
            walk(spec, f"{prefix}{name}.")

    walk(schemas.load(route.request_schema), "")
    return found


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type", ())
    return {kind} if isinstance(kind, str) else set(kind)


def cases() -> Iterator[Case]:
    for provider, route in ENDPOINTS:
        params = _PARAM.findall(route.path)
        properties = body_properties(route)
        if route.method in ("POST", "PUT", "PATCH"):
            # a route without a request schema ignores its body: any non-5xx answer will do
            reads = route.request_schema is not None
            yield Case(provider, route, "nested-json-array", body=b"[" * 100_000, refused=reads)
            yield Case(provider, route, "nested-json-in-object", refused=reads,
                       body=b'{"prompt": ' + b"[" * 100_000)
        for name, schema in properties.items():
            if "string" in _types(schema):
                yield Case(provider, route, f"lone-surrogate-in-{name}", names=name,
                           fields={name: json.dumps("x\ud800y")})  # the raw \ud800 escape
            if "pattern" in schema:  # its documented default, with a final newline
                yield Case(provider, route, f"trailing-newline-in-{name}", names=name,
                           fields={name: json.dumps(schema["default"] + "\n")})
            if "integer" in _types(schema):
                for label, number in (("5000-digits", "9" * 5000), ("1e400", "1e400")):
                    yield Case(provider, route, f"huge-{name}-{label}", names=name,
                               fields={name: number})
        for name, (schema, _) in route.query.items():
            if "integer" in _types(schema):
                # str.isdigit() accepts all three; int() reads the last two as 0 and fails on ²;
                # a provider takes ASCII digits only
                for digit in ("²", "٠", "０"):  # superscript two, Arabic-Indic and fullwidth 0
                    yield Case(provider, route, f"unicode-digit-{name}-{digit}",
                               query={name: digit}, names=name)
        for name in params:
            yield Case(provider, route, f"10kb-{name}", path={name: "a" * 10_240})
            if ":path}" not in route.path:
                # The path as sent decides the route: an escaped slash or a long escaped
                # UTF-8 id stays one segment, answered by this route (not "no such route").
                # "{job}": the provider's real job id (a regex's "$" matches before a final
                # newline: the id with %0A once passed the id check, then crashed a parser).
                for label, raw in (("escaped-slash", "a%2Fb"),
                                   ("escaped-utf8", "%E2%82%AC" * 200),
                                   ("trailing-newline", "{job}%0A"),
                                   ("trailing-crlf", "{job}%0D%0A")):
                    yield Case(provider, route, f"{label}-{name}", path={name: raw},
                               own_route=True)
        if route.request_schema is not None:
            # JSON is UTF-8 and the fake reads no compressed body: refused, naming the header
            for label, headers, named in (
                    ("charset-utf-16", {"content-type": "application/json; charset=utf-16"},
                     "charset"),
                    ("charset-latin-1", {"content-type": "application/json;charset=latin-1"},
                     "charset"),
                    ("content-encoding-gzip", {"content-encoding": "gzip"}, "Content-Encoding"),
                    ("content-encoding-br", {"content-encoding": "br"}, "Content-Encoding")):
                yield Case(provider, route, label, headers=headers, names=named)
            yield Case(provider, route, "charset-utf-8-quoted", refused=False,
                       headers={"content-type": 'application/json; charset="UTF-8"'})
        if route.operation is Operation.SUBMIT:
            for label, scenario in (("queue", "queue-" + "9" * 5000),
                                    ("expire-after", f"expire-after-{'9' * 400}s")):
                yield Case(provider, route, f"huge-scenario-{label}",
                           headers={SCENARIO_HEADER: scenario}, names=SCENARIO_HEADER)
        yield Case(provider, route, "64kb-header", headers={"x-filler": "a" * 65_536},
                   refused=False)
        yield Case(provider, route, "500-headers",
                   headers={f"x-filler-{i}": "a" * 100 for i in range(500)}, refused=False)
        for label, value in (("missing", None), ("empty", ""), ("bearer", "Bearer"),
                             ("bearer-spaces", "Bearer  "), ("basic", "Basic x")):
            yield Case(provider, route, f"authorization-{label}", authorization=value)
        # Not refused by rule: with no api_keys configured any non-empty key is accepted.
        yield Case(provider, route, "authorization-non-ascii",
                   authorization="Bearer ключ".encode(), refused=False)
        yield Case(provider, route, "authorization-10kb-key",
                   authorization="Bearer " + "k" * 10_240, refused=False)


CASES = list(cases())


@dataclass
class World:
    """A fresh fake on a fake clock, a raw client, and one succeeded job per provider."""

    app: Any
    clock: FakeClock
    http: httpx.AsyncClient
    jobs: dict[str, str]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    config = Config().replace(server={"seed": 7},
                              lifecycle={"queue_delay": "fixed(1)", "run_time": "fixed(10)"})
    app = create_app(config, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL,
                                 headers={"authorization": KEY}) as http:
        jobs = {}
        for provider, driver_class in DRIVERS.items():
            driver = driver_class(http)
            submitted = await driver.submit()
            assert submitted.status_code < 300, submitted.text
            jobs[provider] = driver.job_id(submitted)
        clock.advance(60)  # every job has succeeded
        yield World(app, clock, http, jobs)


def valid_request(world: World, case: Case
                  ) -> tuple[str, dict[str, str], bytes | None, dict[str, str]]:
    """The path, query, body and protocol headers of a valid request to the case's route (path
    parameters from their schema's enum or the provider's job, enum query parameters and
    headers at their first value), with the case's path, query and body fields laid over it."""
    route = case.route

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        schema = route.path_params.get(name, {})
        if name in case.path:
            return case.path[name].replace("{job}", world.jobs[case.provider])
        return str(schema["enum"][0]) if "enum" in schema else world.jobs[case.provider]

    path = _PARAM.sub(fill, route.path)
    query = {name: str(schema["enum"][0]) for name, (schema, _) in route.query.items()
             if "enum" in schema}
    query.update(case.query)
    protocol = {name: str(schema["enum"][0]) for name, (schema, _) in route.headers.items()
                if "enum" in schema}
    body = None
    if route.request_schema:
        valid = copy.deepcopy(DRIVERS[case.provider](world.http).valid_body())
        holes = {}
        for index, (dotted, raw) in enumerate(case.fields.items()):
            *parents, leaf = dotted.split(".")
            where = valid
            for name in parents:
                where = where.setdefault(name, {})
            where[leaf] = hole = f"@@hole{index}@@"
            holes[json.dumps(hole)] = raw
        text = json.dumps(valid)
        for hole, raw in holes.items():
            text = text.replace(hole, raw)
        body = text.encode()
    if case.body is not DEFAULT:
        body = case.body
    return path, query, body, protocol


async def send(world: World, case: Case) -> httpx.Response:
    path, query, body, protocol = valid_request(world, case)
    headers: dict[str, str | bytes] = dict(protocol)
    if body is not None:
        headers["content-type"] = "application/json"
    headers.update(case.headers)  # the case's own headers win (a content type, an encoding)
    if case.authorization not in (None, DEFAULT):
        headers["authorization"] = case.authorization
    request = world.http.build_request(case.route.method, path, params=query, content=body,
                                       headers=headers)
    if case.authorization is None:
        del request.headers["authorization"]
    return await world.http.send(request)


def names(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` as a word of its own (``n`` is not named by "not")."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


def verdict(response: httpx.Response, case: Case) -> list[str]:
    """Everything wrong with ``response`` to ``case`` (``[]``: it is right)."""
    wrong = []
    status = response.status_code
    if status >= 500:
        wrong.append(f"answered {status}: {response.text[:200]!r}")
    elif case.refused and not 400 <= status < 500:
        wrong.append(f"accepted it ({status}) instead of a 4xx")
    wrong += [str(p) for p in response_problems(response)]
    if case.names and 400 <= status < 500 and not names(response.text, case.names):
        wrong.append(f"the error does not name {case.names!r}: {response.text[:200]!r}")
    return wrong


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_input_gets_a_provider_shaped_4xx(world: World, case: Case) -> None:
    response = await send(world, case)
    wrong = verdict(response, case)
    if case.own_route:
        routed = world.app.state.wanmock.journal.entries[-1].operation
        if routed != case.route.operation.value:
            wrong.append(f"routed to {routed!r}, not {case.route.operation.value!r}: "
                         f"{response.text[:200]!r}")
    if case.kind.startswith("huge-scenario") and response.status_code < 300:
        # accepted: the job it made must stay answerable (expire-after used to break polls)
        driver = DRIVERS[case.provider](world.http)
        job = driver.job_id(response)
        for _ in range(2):
            polled = await driver.status(job)
            if polled.status_code >= 500:
                wrong.append(f"a later poll of the job answered {polled.status_code}")
            world.clock.advance(3600)
    assert not wrong, f"{case.id}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("provider", sorted(DRIVERS))
@pytest.mark.parametrize("signature", ["é", "%C3%A9", "\ud800", "a" * 10_240])
async def test_a_bad_signature_on_an_image_url_is_an_s3_style_403(world: World, provider: str,
                                                                   signature: str) -> None:
    driver = DRIVERS[provider](world.http)
    (url, *_) = driver.image_urls(await driver.result(world.jobs[provider]))
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert "X-Amz-Signature" in query, url
    query["X-Amz-Signature"] = signature
    raw = urlencode(query, safe="%") if "%" in signature else urlencode(
        query, encoding="utf-8", errors="surrogatepass")
    response = await world.http.get(f"{parts.path}?{raw}")
    assert response.status_code == 403, response.text[:200]
    assert b"<Code>" in response.content and b"<Error>" in response.content


def test_the_matrix_covers_every_endpoint_and_every_string_field() -> None:
    """The generator is not silently empty: every route has cases, and every string field of
    every request schema gets a surrogate case."""
    covered = {(c.provider, c.route.method, c.route.path) for c in CASES}
    assert covered == {(p, r.method, r.path) for p, r in ENDPOINTS}
    strings = {(p, name) for p, r in ENDPOINTS for name, s in body_properties(r).items()
               if "string" in _types(s)}
    surrogates = {(c.provider, c.names) for c in CASES if c.kind.startswith("lone-surrogate")}
    assert strings and strings == surrogates


@pytest.mark.parametrize("bad", [
    (httpx.Response(500, text="Internal Server Error"), "answered 500"),
    (httpx.Response(200, json={"id": "x"}), "instead of a 4xx"),
    (httpx.Response(422, json={"error_code": 422000, "error_message": "bad input"}),
     "does not name"),
    (httpx.Response(400, text="plain"), "application/json"),
])
def test_the_verdict_fails_known_bad_answers(bad: tuple[httpx.Response, str]) -> None:
    response, expected = bad
    route = next(r for p, r in ENDPOINTS if p == "runcomfy" and r.operation is Operation.SUBMIT)
    response.request = httpx.Request("POST", BASE_URL + "/v1/models/wan-ai/wan-2-2/flash/"
                                     "text-to-image")
    case = Case("runcomfy", route, "test", names="negative_prompt")
    assert any(expected in w for w in verdict(response, case)), verdict(response, case)


def test_a_field_is_named_only_as_a_word_of_its_own() -> None:
    assert names('{"param": "n"}', "n") and names("x-wanmock-scenario: too big",
                                                  "X-Wanmock-Scenario")
    assert not names("request body is not valid", "n") and not names("seeds", "seed")


def test_the_verdict_passes_a_good_answer() -> None:
    route = next(r for p, r in ENDPOINTS if p == "runcomfy" and r.operation is Operation.SUBMIT)
    response = httpx.Response(422, json={
        "error_code": 422000, "error_message": "negative_prompt: lone surrogate",
        "detail": [{"loc": ["body", "negative_prompt"], "msg": "lone surrogate",
                    "type": "value_error"}]})
    response.request = httpx.Request("POST", BASE_URL + "/v1/models/wan-ai/wan-2-2/flash/"
                                     "text-to-image")
    assert verdict(response, Case("runcomfy", route, "test", names="negative_prompt")) == []
