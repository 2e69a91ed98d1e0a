import math

import pytest

from wanmock.server.engine import Plan
from wanmock.server.errors import InvalidRequest
from wanmock.server.scenarios import apply_scenario, parse_scenario
from wanmock.server.vocab import FailureKind


def plan(text: str) -> Plan:
    return apply_scenario(Plan(run_seconds=60), text, backlog_drain=2.0)


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("succeed", lambda p: p.failure is None),
        ("fail", lambda p: p.failure.kind is FailureKind.INTERNAL),
        ("fail-moderation", lambda p: p.failure.kind is FailureKind.MODERATION),
        ("fail-after-30s", lambda p: p.failure and p.run_seconds == 30),
        ("fail-after-3-polls", lambda p: p.failure and p.end_after_polls == 3),
        ("succeed-after-2-polls", lambda p: p.failure is None and p.end_after_polls == 2),
        ("run-5s", lambda p: p.run_seconds == 5),
        ("slow", lambda p: p.run_seconds == 600),
        ("queue-10s", lambda p: p.queue_delay == 10),
        ("queue-250", lambda p: (p.ahead, p.drain) == (250, 2.0)),
        ("stuck", lambda p: p.stuck_in_queue),
        ("stuck-running", lambda p: math.isinf(p.run_seconds)),
        ("expire-after-60s", lambda p: p.expire_after == 60),
        ("cancel-after-30s", lambda p: p.cancel_after == 30),
        ("fail-moderation, queue-250", lambda p: p.failure and p.ahead == 250),
    ],
)
def test_each_scenario_shapes_the_plan(text: str, check) -> None:  # type: ignore[no-untyped-def]
    result = plan(text)
    assert check(result)
    assert result.scenario == text


def test_unknown_scenarios_name_the_header_and_the_forms() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_scenario("succeed, explode")
    assert info.value.field == "X-Wanmock-Scenario"
    assert "'explode'" in info.value.message and "fail-after-<N>-polls" in info.value.message
