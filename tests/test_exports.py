"""The public surface is exactly ``__all__`` (compare httpx's test_exported_members)."""

import importlib

import pytest

MODULES = ["wanmock.server", "wanmock.schemas"]


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {n for n, v in vars(module).items() if not n.startswith("_")
              and getattr(v, "__module__", name).startswith(name.split(".")[0])
              and not isinstance(v, type(importlib))}
    exported = set(module.__all__)
    assert exported <= set(vars(module)), exported - set(vars(module))
    assert public - exported == set(), f"public but not in __all__: {public - exported}"
    for item in exported:
        assert getattr(module, item).__doc__, f"{name}.{item} has no docstring"
