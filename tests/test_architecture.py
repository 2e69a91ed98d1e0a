"""Imports point down only (see ARCHITECTURE.md), and only by the shipped names."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Every module of the core: ``mock_server/*.py`` and ``mock_server/state/`` but the package's
#: front door (``__init__``, ``__main__``, ``cli``), found on disk so a new module is checked too.
CORE = sorted(
    str(path.relative_to(ROOT / "mock_server").with_suffix(""))
    for folder in ("", "state")
    for path in (ROOT / "mock_server" / folder).glob("*.py")
    if path.stem not in ({"__init__", "__main__", "cli"} if not folder else set()))
FORBIDDEN_FOR_CORE = ("starlette", "uvicorn", "httpx", "wanmock.server.web",
                      "wanmock.server.dialects", "wanmock.server.cli", "wanmock.contracts",
                      ".web", ".dialects", ".cli")
#: The repository's folder names; installed, they exist only under ``wanmock``.
UNSHIPPED_NAMES = ("mock_server", "schemas", "contracts", "examples")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_core_list_is_found_on_disk() -> None:
    assert {"engine", "lifecycle", "state/base", "state/memory", "state/redis",
            "state/census"} <= set(CORE)


@pytest.mark.parametrize("module", CORE)
def test_core_imports_nothing_from_upper_layers(module: str) -> None:
    found = imports(ROOT / "mock_server" / f"{module}.py")
    bad = {name for name in found if name.startswith(FORBIDDEN_FOR_CORE)}
    assert not bad, f"mock_server/{module}.py imports {bad}"


def test_schemas_and_dialects_do_not_reach_up() -> None:
    assert not {n for n in imports(ROOT / "schemas" / "__init__.py")
                if n.startswith(("wanmock.server", "wanmock.contracts"))}
    for path in (ROOT / "mock_server" / "dialects").glob("*.py"):
        bad = {n for n in imports(path) if n.startswith(("..web", "..cli", "starlette",
                                                          "wanmock.contracts"))}
        assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("folder", ["mock_server", "schemas", "contracts", "examples", "tests",
                                    "benchmarks"])
def test_code_imports_the_installed_names_only(folder: str) -> None:
    """``import schemas`` works in this checkout but not once installed: always ``wanmock.…``."""
    for path in (ROOT / folder).rglob("*.py"):
        bad = {n for n in imports(path) if n.split(".")[0] in UNSHIPPED_NAMES}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}; use wanmock.server/schemas/…"
