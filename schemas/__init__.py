"""JSON Schemas (2020-12) for every body both providers send or receive, and their one loader.

Schemas are data files named ``<provider>/<name>.json``; a schema's *name* is that path without
``.json`` (e.g. ``"therouter/job"``). Validators are built once and cached. Problems come back as
:class:`Issue` values that name the schema, the JSON pointer, the rule and the offending value.

>>> [issue.field for issue in check("runcomfy/submit-request", {"prompt": "x", "seed": "7"})]
['seed']
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

__all__ = [
    "EXAMPLES_DIR",
    "SCHEMA_DIR",
    "Example",
    "Issue",
    "SchemaViolation",
    "check",
    "ecma_regex",
    "example_files",
    "load",
    "names",
    "validate",
    "validator",
]

SCHEMA_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = SCHEMA_DIR / "examples"


@dataclass(frozen=True, slots=True)
class Issue:
    """One way an instance breaks a schema."""

    schema: str
    #: JSON pointer into the instance, e.g. ``/output/image``; ``""`` for the root.
    pointer: str
    #: Dotted field path (``output.image``), or the missing/unknown field's name.
    field: str
    #: The JSON Schema keyword that failed (``enum``, ``required``, ``type``...).
    rule: str
    message: str
    value: Any


class SchemaViolation(AssertionError):
    """Raised by :func:`validate`; carries every :class:`Issue`."""

    def __init__(self, schema: str, issues: list[Issue]) -> None:
        self.schema = schema
        self.issues = issues
        lines = [f"  {i.pointer or '/'}: {i.message} [{i.rule}]" for i in issues]
        super().__init__(f"instance does not match schema {schema!r}:\n" + "\n".join(lines))


@dataclass(frozen=True, slots=True)
class Example:
    """A documented example body and the schema it must match."""

    schema: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.schema}:{self.path.stem}"


def names() -> list[str]:
    """Every schema name, sorted."""
    return sorted(
        str(p.relative_to(SCHEMA_DIR).with_suffix(""))
        for p in SCHEMA_DIR.glob("*/*.json")
        if p.parent.name != "examples"
    )


@functools.cache
def _load(name: str) -> Mapping[str, Any]:
    path = SCHEMA_DIR / f"{name}.json"
    if name not in names():
        raise KeyError(f"no schema named {name!r}; known: {', '.join(names())}")
    with open(path, encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def load(name: str) -> dict[str, Any]:
    """A fresh copy of the schema document ``name`` (safe to modify)."""
    return copy.deepcopy(dict(_load(name)))


@functools.cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    r"""A schema ``pattern`` compiled for Python with JSON Schema's (ECMA-262) meaning of ``$``:
    the end of the string. Python's ``$`` also matches before a final newline, so ``^a$`` would
    accept ``"a\n"``; every ``$`` outside a character class becomes ``\Z``.

    >>> bool(ecma_regex("^a$").search("a\n")), bool(ecma_regex("^[$]$").search("$"))
    (False, True)
    """
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, _: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 with ECMA-262 ``pattern`` semantics (as the compiled validator has).
_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The cached validator of schema ``name``."""
    schema = _load(name)
    Draft202012Validator.check_schema(schema)
    return _Validator(schema)  # type: ignore[no-any-return]


@functools.cache
def _fast(name: str) -> Any:
    # A compiled Rust validator answers "valid?" in about a microsecond; only an invalid
    # instance pays for jsonschema's detailed errors.
    return jsonschema_rs.validator_for(dict(_load(name)))


def check(name: str, instance: Any) -> list[Issue]:
    """Every problem of ``instance`` against schema ``name`` (empty when valid), stable order."""
    if _fast(name).is_valid(instance):
        return []
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:  # the two validators disagree: never let that pass as valid
        return [Issue(name, "", "", "schema", f"the body does not match schema {name!r} "
                      "(the compiled validator refuses it; no rule could be named)", instance)]
    return [_issue(name, error) for error in errors]


def validate(name: str, instance: Any) -> None:
    """Raise :class:`SchemaViolation` unless ``instance`` matches schema ``name``."""
    issues = check(name, instance)
    if issues:
        raise SchemaViolation(name, issues)


def example_files() -> Iterator[Example]:
    """Every documented example kept under ``examples/<provider>/<schema>/``."""
    for path in sorted(EXAMPLES_DIR.glob("*/*/*")):
        if path.suffix in (".json", ".txt"):
            yield Example(schema=f"{path.parent.parent.name}/{path.parent.name}", path=path)


def _issue(name: str, error: ValidationError) -> Issue:
    path = list(error.absolute_path)
    pointer = "".join(f"/{p}" for p in path)
    field = ".".join(str(p) for p in path)
    rule = str(error.validator)
    expected: Any = error.validator_value
    value = error.instance
    where = field or "body"
    schema: Any = error.schema if isinstance(error.schema, Mapping) else {}
    if rule == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        field = f"{field}.{missing}" if field else missing
        message = f"{field} is required"
    elif rule in ("additionalProperties", "unevaluatedProperties"):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, Mapping) else []
        field = ".".join(filter(None, [field, extra[0] if extra else ""]))
        message = (
            f"unknown field{'s' * (len(extra) > 1)} {', '.join(map(repr, extra))}"
            f"{' in ' + where if path else ''}; allowed: {', '.join(allowed)}"
        )
    elif rule == "enum":
        choices = ", ".join(json.dumps(v) for v in expected)
        message = f"{where} must be one of {choices}; got {json.dumps(value)}"
    elif rule == "const":
        message = f"{where} must be {json.dumps(expected)}; got {json.dumps(value)}"
    elif rule == "type":
        kinds = " or ".join(expected) if isinstance(expected, list) else expected
        message = f"{where} must be of type {kinds}; got {_json_type(value)} {_short(value)}"
    elif rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        message = f"{where} must be {words[rule]} {expected}; got {_short(value)}"
    elif rule == "minLength" and expected == 1:
        message = f"{where} must not be empty"
    elif rule in ("minLength", "maxLength", "minItems", "maxItems"):
        message = f"{where}: {error.message} ({rule} {expected})"
    elif rule == "pattern":
        rule_text = schema.get("x-rule")
        message = (
            f"{where} must be {rule_text}; got {_short(value)}"
            if rule_text
            else f"{where} {_short(value)} does not match the pattern {expected}"
        )
    elif rule == "not" and list(expected) == ["required"]:
        (forbidden,) = expected["required"]
        field = f"{field}.{forbidden}" if field else forbidden
        status = value.get("status") if isinstance(value, Mapping) else None
        message = f"{field} must not be present" + (f" when status is {status!r}" if status else "")
    else:
        message = f"{where}: {error.message}"
    return Issue(name, pointer, field, rule, message, value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
