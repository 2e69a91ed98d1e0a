"""Every docstring example in the shipped packages runs (imported by their installed names)."""

import doctest
import importlib
import pkgutil

import pytest

import wanmock.contracts
import wanmock.schemas
import wanmock.server

PACKAGES = (wanmock.server, wanmock.schemas, wanmock.contracts)
MODULES = [package.__name__ for package in PACKAGES] + sorted(
    info.name
    for package in PACKAGES
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"
