"""The real providers (opt-in: ``pytest -m smoke`` with a key). Costs $0.048 per image."""

from __future__ import annotations

import pytest

from wanmock.contracts.smoke import KEY_ENV, find_key, run_smoke

pytestmark = [pytest.mark.smoke, pytest.mark.anyio]


@pytest.mark.parametrize("provider", sorted(KEY_ENV))
async def test_live_provider_honours_the_contract(provider: str) -> None:
    key = find_key(provider)
    if key is None:
        pytest.skip(f"{KEY_ENV[provider]} is not set: the real-API smoke test is opt-in")
    report = await run_smoke(provider, api_key=key, max_jobs=1)
    assert report.ok, report.render()
