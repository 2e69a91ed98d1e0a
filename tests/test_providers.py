"""A provider is one module: nothing else names it, and a new one needs no other file.

Two checks. (1) The code of ``mock_server/`` and ``contracts/`` (identifiers and string
literals; docstrings and comments may use a provider as an example) names a provider only in
its own module under ``dialects/`` and in the registry that imports it, and nowhere — tests
included, except each provider's own test files — is behaviour chosen by comparing a provider
name with a literal (``driver.provider == "therouter"``: a missing attribute on the provider).
(2) A toy fourth provider, defined in this file only, registers, is served, configured from its
own ``[toy]`` section, and passes the generic contract checks.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from wanmock.contracts.provider import verify_provider
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import Endpoint, TheRouter, default_registry
from wanmock.server.dialects.therouter import TheRouterOptions

ROOT = Path(__file__).resolve().parent.parent
NAMES = tuple(default_registry().names())
#: Where naming a provider is the point: its module, and the registry importing it.
OWN = {f"mock_server/dialects/{name}.py" for name in NAMES} | {"mock_server/dialects/__init__.py"}
#: Tests about one provider (their file name says which), where comparing with its name is fine.
PROVIDER_TESTS = re.compile(rf"^tests/(?:web/test_|providers/test_)({'|'.join(NAMES)})\w*\.py$")


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def named_providers(source: str) -> set[str]:
    """Providers named by identifiers or non-docstring strings of ``source``.

    >>> sorted(named_providers('x = "therouter/job"  # runcomfy'))
    ['therouter']
    """
    tree = ast.parse(source)
    skip = _docstrings(tree)
    words: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            words.append(node.value)
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, ast.alias):
            words.append(node.name)
    text = " ".join(words).lower()
    return {name for name in NAMES if re.search(rf"(?<![a-z]){name}(?![a-z])", text)}


def provider_branches(source: str) -> list[int]:
    """Lines comparing a provider (``provider``, ``x.provider``, ``x.name``) with a literal
    provider name.

    >>> provider_branches('if driver.provider == "runcomfy": pass')
    [1]
    >>> provider_branches('ok = row["provider"] == "therouter"')  # data, not a branch
    []
    """
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        subject = any((isinstance(s, ast.Name) and s.id == "provider")
                      or (isinstance(s, ast.Attribute) and s.attr in ("provider", "name"))
                      for s in sides)
        literals = [c for s in sides for c in (s.elts if isinstance(s, ast.Tuple | ast.List
                                                                  | ast.Set) else [s])
                    if isinstance(c, ast.Constant) and c.value in NAMES]
        if subject and literals:
            lines.append(node.lineno)
    return lines


def test_only_a_providers_own_module_names_it() -> None:
    found = {}
    for path in _sources("mock_server", "contracts"):
        where = str(path.relative_to(ROOT))
        if where not in OWN and (named := named_providers(path.read_text())):
            found[where] = sorted(named)
    assert not found, f"provider names outside their modules: {found}"


def test_no_behaviour_is_chosen_by_comparing_provider_names() -> None:
    found = {}
    for path in _sources("mock_server", "contracts", "tests", "examples"):
        where = str(path.relative_to(ROOT))
        if where in OWN or PROVIDER_TESTS.match(where):
            continue
        if lines := provider_branches(path.read_text()):
            found[where] = lines
    assert not found, f"provider == ... branches (add an attribute to the provider): {found}"


def test_the_checks_fail_on_known_bad_code() -> None:
    bad = 'if rt.provider in ("therouter", "dashscope"):\n    path = "/v1/jobs/x"\n'
    assert provider_branches(bad) == [1]
    assert named_providers("from .dialects import RunComfy") == {"runcomfy"}
    assert named_providers('"""A docstring may say therouter."""\nx = 1\n') == set()
    assert PROVIDER_TESTS.match("tests/web/test_runcomfy.py")
    assert not PROVIDER_TESTS.match("tests/web/test_flows.py")


# A toy fourth provider: everything it is lives here ---------------------------------------------

_PREFIX = "/toy"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ToyOptions(TheRouterOptions):
    """``[toy]``: the options of the provider it is modelled on; its docs keep a job an hour."""

    retention: float = 3600.0


class Toy(TheRouter):
    """TheRouter's wire format under other paths and another name: a provider added by one
    class and nothing else."""

    name: ClassVar[str] = "toy"
    title: ClassVar[str] = "Toy Images"
    path_prefixes: ClassVar[tuple[str, ...]] = (f"{_PREFIX}/v1/",)
    routes = tuple(dataclasses.replace(r, path=_PREFIX + r.path) for r in TheRouter.routes)
    Options = ToyOptions
    client = dataclasses.replace(
        TheRouter.client,
        submit=Endpoint("POST", f"{_PREFIX}/v1/images/generations", {"async": "true"}),
        status=Endpoint("GET", f"{_PREFIX}/v1/jobs/{{id}}"),
        cancel=Endpoint("POST", f"{_PREFIX}/v1/jobs/{{id}}/cancel"),
        url_fields={"polling_url": (f"{_PREFIX}/v1/jobs/{{id}}", False)},
        real_base_url="https://toy.invalid",
        key_env="TOY_API_KEY",
    )

    def polling_url(self, base: str, job_id: str) -> str:
        return f"{base}{_PREFIX}/v1/jobs/{job_id}"


@pytest.mark.anyio
async def test_a_toy_fourth_provider_registers_and_passes_the_contract_checks() -> None:
    registry = default_registry()
    registry.register(Toy)
    clock = FakeClock()
    config = Config().replace(server={"seed": 3}, toy={"retention": 3600.0})
    app = create_app(config, clock=clock, registry=registry)
    dialect = app.state.wanmock.dialects["toy"]
    assert dialect.retention == 3600.0  # its own config section

    async def wait(seconds: float) -> None:
        clock.advance(seconds)

    report = await verify_provider("toy", "http://127.0.0.1:8000", "key", wait=wait,
                                   transport=httpx.ASGITransport(app=app), registry=registry)
    assert report.ok, report.render()
    assert [r.outcome for r in report.results] == ["pass"] * 5
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1:8000") as http:
        spec = (await http.get("/openapi.json")).json()
    assert f"{_PREFIX}/v1/jobs/{{job_id}}" in spec["paths"]
    journal = app.state.wanmock.journal
    assert journal.requests_by_provider()["toy"] >= 5


def test_a_registry_refuses_a_second_provider_of_the_same_name() -> None:
    registry = default_registry()
    registry.register(Toy)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Toy)
