"""Installing wanmock never breaks a user's project (issue 10).

The wheel is built from this checkout and installed into a fresh virtual environment beside a
project that has its own ``schemas.py`` and ``contracts/`` package; that project's pytest run uses
a wanmock fixture. Before the ``wanmock`` namespace, the wheel installed top-level ``schemas`` and
``contracts``, and the pytest plugin (``contracts.plugin``) then failed to load in such a project.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_TEST = '''
    import httpx
    import contracts.helpers
    import schemas

    def test_my_own_modules_and_wanmock_side_by_side(wanmock_base_url):
        assert schemas.MINE == "the project's own schemas module"
        assert contracts.helpers.double(2) == 4
        answer = httpx.get(f"{wanmock_base_url}/__admin/health", timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "ok"

    def test_wanmock_comes_from_the_wheel():
        import wanmock.server
        assert "fresh-venv" in wanmock.server.__file__, wanmock.server.__file__
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    (built,) = out.glob("wanmock-*.whl")
    return built


def test_the_wheel_claims_only_the_wanmock_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"wanmock", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for package in ("server", "schemas", "contracts", "examples"):
        assert f"wanmock/{package}/__init__.py" in names
    assert any(name.startswith("wanmock/schemas/therouter/") for name in names)  # data files
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "wanmock = wanmock.contracts.plugin" in entry_points
    assert "wanmock = wanmock.server.cli:main" in entry_points


def test_a_project_with_its_own_schemas_and_contracts_runs_its_tests(
    wheel: Path, tmp_path: Path,
) -> None:
    venv = tmp_path / "fresh-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)
    # The wheel's dependencies come from this environment (the same packages pip would fetch):
    # its site-packages is put on the path, but its .pth files are not run, so the checkout's
    # own development install stays out of the fresh environment.
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    project = tmp_path / "project"
    (project / "contracts").mkdir(parents=True)
    (project / "schemas.py").write_text('MINE = "the project\'s own schemas module"\n')
    (project / "contracts" / "__init__.py").write_text("")
    (project / "contracts" / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (project / "test_project.py").write_text(textwrap.dedent(USER_TEST))
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                         cwd=project, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
