"""Imports point down only (see ARCHITECTURE.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ["clock", "config", "distributions", "engine", "errors", "faults", "images", "journal",
        "lifecycle", "presets", "scenarios", "scheduler", "store", "vocab"]
FORBIDDEN_FOR_CORE = ("starlette", "uvicorn", "httpx", "mock_server.web", "mock_server.dialects",
                      "mock_server.cli", "contracts", ".web", ".dialects", ".cli")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_imports_nothing_from_upper_layers(module: str) -> None:
    found = imports(ROOT / "mock_server" / f"{module}.py")
    bad = {name for name in found if name.startswith(FORBIDDEN_FOR_CORE)}
    assert not bad, f"mock_server/{module}.py imports {bad}"


def test_schemas_and_dialects_do_not_reach_up() -> None:
    assert not {n for n in imports(ROOT / "schemas" / "__init__.py")
                if n.startswith(("mock_server", "contracts"))}
    for path in (ROOT / "mock_server" / "dialects").glob("*.py"):
        bad = {n for n in imports(path) if n.startswith(("..web", "..cli", "starlette",
                                                          "contracts"))}
        assert not bad, f"{path.name} imports {bad}"
