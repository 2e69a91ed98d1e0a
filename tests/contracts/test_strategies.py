"""The exported strategies against the fake: valid bodies accepted, invalid ones refused by name."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from tests.conftest import Checked
from wanmock.contracts.drivers import DRIVERS
from wanmock.contracts.strategies import InvalidRequest, invalid_requests, scenarios, valid_requests
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import default_registry

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
@given(data=st.data())
def test_valid_bodies_are_accepted(provider: str, data: st.DataObject) -> None:
    body = data.draw(valid_requests(provider))
    answer = submit(provider, body)
    assert answer.status_code in (200, 202), answer.text


@pytest.mark.parametrize("provider", sorted(DRIVERS))
@settings(max_examples=40)
@given(data=st.data())
def test_invalid_bodies_get_a_4xx_naming_the_field(provider: str, data: st.DataObject) -> None:
    broken: InvalidRequest = data.draw(invalid_requests(provider))
    answer = submit(provider, broken.body)
    assert 400 <= answer.status_code < 500, (broken, answer.text)
    assert broken.field in answer.text, (broken, answer.text)


@pytest.mark.parametrize("provider", sorted(DRIVERS))
@settings(max_examples=30)
@given(data=st.data())
def test_every_generated_scenario_is_accepted(provider: str, data: st.DataObject) -> None:
    body = default_registry().get(provider).client.body("x")
    answer = submit(provider, body, **{"X-Wanmock-Scenario": data.draw(scenarios())})
    assert answer.status_code in (200, 202), answer.text
