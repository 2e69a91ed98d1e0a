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
    """Values of one property schema (the request schemas use only these keywords; objects
    nest, as DashScope's ``input`` and ``parameters`` do)."""
    if "const" in spec:
        return st.just(spec["const"])
    if "enum" in spec:
        return st.sampled_from(spec["enum"])
    kind = spec["type"]
    if kind == "object":
        return _object(spec)
    if kind == "integer":
        return st.integers(spec.get("minimum"), spec.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if "pattern" in spec:
        return st.from_regex(spec["pattern"], fullmatch=True)
    return st.text(min_size=spec.get("minLength", 0), max_size=200)


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {name: _value(spec) for name, spec in properties.items() if name in required},
        optional={name: _value(spec) for name, spec in properties.items()
                  if name not in required},
    )


def valid_requests(provider: str) -> st.SearchStrategy[dict[str, Any]]:
    """Submit bodies the provider must accept: every required field, any optional ones (and
    only those its arithmetic rules beyond the schema accept, e.g. DashScope's 2 megapixels)."""
    return _object(_schema(provider)).filter(_FACTS[provider].accepts)


_WRONG_TYPES = {"string": 5, "integer": "7", "boolean": "yes", "object": "x"}
Path = tuple[str, ...]


def _specs(schema: dict[str, Any], body: Any, path: Path = ()
           ) -> list[tuple[Path, dict[str, Any], bool]]:
    """Every property whose parent object is present in ``body``: (path, schema, required)."""
    found = []
    required = set(schema.get("required", ()))
    for name, spec in schema.get("properties", {}).items():
        found.append(((*path, name), spec, name in required))
        if isinstance(body, dict) and isinstance(body.get(name), dict):
            found.extend(_specs(spec, body[name], (*path, name)))
    return found


def _containers(schema: dict[str, Any], body: Any, path: Path = ()) -> list[Path]:
    """The objects present in ``body`` that refuse unknown members."""
    found = [path] if schema.get("additionalProperties") is False else []
    for name, spec in schema.get("properties", {}).items():
        if isinstance(body, dict) and isinstance(body.get(name), dict):
            found.extend(_containers(spec, body[name], (*path, name)))
    return found


def _put(body: dict[str, Any], path: Path, value: Any = None, *, delete: bool = False
         ) -> dict[str, Any]:
    """A copy of ``body`` with ``value`` at ``path`` (or the member there removed)."""
    copy = dict(body)
    head, rest = path[0], path[1:]
    if rest:
        copy[head] = _put(copy[head], rest, value, delete=delete)
    elif delete:
        del copy[head]
    else:
        copy[head] = value
    return copy


def invalid_requests(provider: str) -> st.SearchStrategy[InvalidRequest]:
    """Submit bodies that break exactly one rule of the provider's request schema; ``field``
    is the dotted path of the offending member (``parameters.n``)."""
    schema = _schema(provider)

    def breaking(body: dict[str, Any], draw: st.DrawFn) -> InvalidRequest:
        specs = _specs(schema, body)
        typed = [(p, s) for p, s, _ in specs if "type" in s]
        enums = [(p, s) for p, s, _ in specs if "enum" in s]
        ranged = [(p, s) for p, s, _ in specs if "maximum" in s]
        kinds = ["missing", "unknown", "wrong-type"]
        kinds += ["enum"] if enums else []
        kinds += ["range"] if ranged else []
        kind = draw(st.sampled_from(kinds))
        if kind == "missing":
            path = draw(st.sampled_from(sorted(p for p, _, required in specs if required)))
            return InvalidRequest(_put(body, path, delete=True), ".".join(path), "required")
        if kind == "unknown":
            where = draw(st.sampled_from(sorted(_containers(schema, body))))
            known = _specs_at(schema, where)
            name = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12)
                        .filter(lambda n: n not in known))
            value = draw(st.integers() | st.text(max_size=5))
            return InvalidRequest(_put(body, (*where, name), value), ".".join((*where, name)),
                                  "additionalProperties")
        if kind == "wrong-type":
            path, spec = draw(st.sampled_from(sorted(typed, key=lambda t: t[0])))
            return InvalidRequest(_put(body, path, _WRONG_TYPES[spec["type"]]),
                                  ".".join(path), "type")
        if kind == "enum":
            path, spec = draw(st.sampled_from(sorted(enums, key=lambda t: t[0])))
            allowed = spec["enum"]
            value = draw(st.from_type(type(allowed[0])).filter(lambda v: v not in allowed))
            return InvalidRequest(_put(body, path, value), ".".join(path), "enum")
        path, spec = draw(st.sampled_from(sorted(ranged, key=lambda t: t[0])))
        value = draw(st.sampled_from([spec["maximum"] + 1, spec.get("minimum", 0) - 1]))
        return InvalidRequest(_put(body, path, value), ".".join(path), "range")

    @st.composite
    def build(draw: st.DrawFn) -> InvalidRequest:
        return breaking(draw(valid_requests(provider)), draw)

    return build()


def _specs_at(schema: dict[str, Any], path: Path) -> set[str]:
    for name in path:
        schema = schema["properties"][name]
    return set(schema.get("properties", {}))


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
