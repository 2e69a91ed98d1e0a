"""Hypothesis strategies for users' own property tests: requests (valid and invalid, from the
schemas), scenarios and faults.

>>> from hypothesis import given
>>> @given(valid_requests("runcomfy"))
... def test_my_client_builds_bodies(body): ...
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from wanmock import schemas
from wanmock.server.dialects import default_registry
from wanmock.server.scenarios import SCENARIO_FORMS
from wanmock.server.vocab import FaultKind

__all__ = ["InvalidRequest", "faults", "invalid_requests", "scenarios", "valid_requests"]

_FACTS = {cls.name: cls.client for cls in default_registry()}
REQUEST_SCHEMAS = {name: facts.request_schema for name, facts in _FACTS.items()}
#: Fields the provider checks beyond its schema (a served model, say).
_FIXED = {name: dict(facts.fixed_fields) for name, facts in _FACTS.items()}


@dataclass(frozen=True, slots=True)
class InvalidRequest:
    """A body that breaks one rule: which field, which rule."""

    body: Any
    field: str
    rule: str


@functools.cache
def _schema(provider: str) -> dict[str, Any]:
    document = schemas.load(REQUEST_SCHEMAS[provider])
    document.pop("$schema", None)
    document.pop("$id", None)
    for name, value in _FIXED[provider].items():
        document["properties"][name] = {"const": value}
    return document


def _value(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of one flat property schema (the request schemas use only these keywords)."""
    if "const" in spec:
        return st.just(spec["const"])
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    kind = spec["type"]
    if kind == "integer":
        return st.integers(spec.get("minimum"), spec.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if "pattern" in spec:
        return st.from_regex(spec["pattern"], fullmatch=True)
    return st.text(min_size=spec.get("minLength", 0), max_size=200)


def valid_requests(provider: str) -> st.SearchStrategy[dict[str, Any]]:
    """Submit bodies the provider must accept: every required field, any optional ones."""
    schema = _schema(provider)
    properties = schema["properties"]
    required = set(schema["required"])
    return st.fixed_dictionaries(
        {name: _value(spec) for name, spec in properties.items() if name in required},
        optional={name: _value(spec) for name, spec in properties.items()
                  if name not in required},
    )


_WRONG_TYPES = {"string": 5, "integer": "7", "boolean": "yes"}


def invalid_requests(provider: str) -> st.SearchStrategy[InvalidRequest]:
    """Submit bodies that break exactly one rule of the provider's request schema."""
    schema = _schema(provider)
    properties = schema["properties"]

    def breaking(body: dict[str, Any], draw: st.DrawFn) -> InvalidRequest:
        kinds = ["missing", "unknown", "wrong-type"]
        kinds += ["enum"] if any("enum" in p for p in properties.values()) else []
        kinds += ["range"] if any("maximum" in p for p in properties.values()) else []
        kind = draw(st.sampled_from(kinds))
        body = dict(body)
        if kind == "missing":
            name = draw(st.sampled_from(sorted(schema["required"])))
            del body[name]
            return InvalidRequest(body, name, "required")
        if kind == "unknown":
            name = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12)
                        .filter(lambda n: n not in properties))
            body[name] = draw(st.integers() | st.text(max_size=5))
            return InvalidRequest(body, name, "additionalProperties")
        if kind == "wrong-type":
            name = draw(st.sampled_from(sorted(n for n, p in properties.items() if "type" in p)))
            body[name] = _WRONG_TYPES[properties[name]["type"]]
            return InvalidRequest(body, name, "type")
        if kind == "enum":
            name = draw(st.sampled_from(sorted(n for n, p in properties.items() if "enum" in p)))
            allowed = properties[name]["enum"]
            value = draw(st.from_type(type(allowed[0])).filter(lambda v: v not in allowed))
            body[name] = value
            return InvalidRequest(body, name, "enum")
        name = draw(st.sampled_from(sorted(n for n, p in properties.items() if "maximum" in p)))
        spec = properties[name]
        body[name] = draw(st.sampled_from([spec["maximum"] + 1, spec.get("minimum", 0) - 1]))
        return InvalidRequest(body, name, "range")

    @st.composite
    def build(draw: st.DrawFn) -> InvalidRequest:
        return breaking(draw(valid_requests(provider)), draw)

    return build()


def scenarios() -> st.SearchStrategy[str]:
    """Values for the ``X-Wanmock-Scenario`` header (single words, numbers filled in)."""
    def fill(form: str) -> st.SearchStrategy[str]:
        if "<N>" not in form:
            return st.just(form)
        return st.integers(1, 600).map(lambda n: form.replace("<N>", str(n)))

    return st.one_of([fill(form) for form in SCENARIO_FORMS])


def faults() -> st.SearchStrategy[FaultKind]:
    """Named HTTP faults."""
    return st.sampled_from(list(FaultKind))
