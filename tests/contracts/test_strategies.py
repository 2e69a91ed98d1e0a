"""The exported strategies against the fake: valid bodies accepted, invalid ones refused by name."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given, settings
from starlette.applications import Starlette

from tests.conftest import Checked
from wanmock.contracts.drivers import DRIVERS
from wanmock.contracts.strategies import InvalidRequest, invalid_requests, scenarios, valid_requests
from wanmock.server import Config, FakeClock, create_app

APP: dict[str, Starlette] = {}


def app() -> Starlette:  # one app for all examples: the property is per request
    if "app" not in APP:
        APP["app"] = create_app(Config().replace(server={"seed": 1}), clock=FakeClock())
    return APP["app"]


def submit(provider: str, body: object, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with Checked(app()) as http:
            return await DRIVERS[provider](http).submit(body, headers=headers)  # type: ignore[arg-type]

    return asyncio.run(go())


@pytest.mark.parametrize("provider", sorted(DRIVERS))
@settings(max_examples=40)
@given(data=valid_requests("therouter") | valid_requests("runcomfy"))
def test_valid_bodies_are_accepted(provider: str, data: dict) -> None:  # type: ignore[type-arg]
    body = data if ("model" in data) == (provider == "therouter") else None
    if body is None:
        return
    assert submit(provider, body).status_code in (200, 202)


@pytest.mark.parametrize("provider", sorted(DRIVERS))
@settings(max_examples=40)
@given(data=invalid_requests("therouter") | invalid_requests("runcomfy"))
def test_invalid_bodies_get_a_4xx_naming_the_field(provider: str, data: InvalidRequest) -> None:
    if ("model" in data.body or data.field == "model") != (provider == "therouter"):
        return
    answer = submit(provider, data.body)
    assert 400 <= answer.status_code < 500
    assert data.field in answer.text


@settings(max_examples=30)
@given(scenarios())
def test_every_generated_scenario_is_accepted(scenario: str) -> None:
    answer = submit("runcomfy", {"prompt": "x"}, **{"X-Wanmock-Scenario": scenario})
    assert answer.status_code == 200
