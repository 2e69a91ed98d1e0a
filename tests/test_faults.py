from collections.abc import Iterable, Mapping

import pytest

from tests.support import now
from wanmock.server.clock import FakeClock
from wanmock.server.config import Config
from wanmock.server.distributions import Distribution, Fixed
from wanmock.server.errors import ConfigError
from wanmock.server.faults import (
    Decision,
    FaultRule,
    FaultRules,
    RateLimit,
    ScriptedFault,
    count_in_window,
)
from wanmock.server.state import Gate, MemoryState
from wanmock.server.vocab import FaultKind, Operation, Phase


class FaultInjector:
    """The decision as the edge makes it: the state's passage, then the rules."""

    def __init__(self, *, rules: Iterable[FaultRule] = (),
                 latency: Mapping[Operation, Distribution] | None = None,
                 rate_limits: Mapping[str, RateLimit] | None = None,
                 timeout_delay: float = 300.0, seed: int = 0) -> None:
        self.rules = FaultRules(rules=rules, latency=latency, rate_limits=rate_limits,
                                timeout_delay=timeout_delay)
        self.state = MemoryState(FakeClock(), seed=seed)

    def script(self, faults: list[ScriptedFault], *, provider: str | None = None,
               operation: Operation | None = None) -> int:
        return now(self.state.script(faults, provider=provider, operation=operation))

    def scripted(self) -> dict[str, list[str]]:
        return now(self.state.scripted())

    def decide(self, provider: str, operation: Operation, phase: Phase | None, key: str,
               at: float) -> Decision:
        gate = Gate(provider, operation, key, self.rules.limit(operation))
        passage = now(self.state.passage(gate, at))
        return self.rules.decide(passage, provider, operation, phase, self.state.rng)


def test_scripts_come_first_in_order_and_pass_lets_one_through() -> None:
    injector = FaultInjector(rules=[FaultRule(fault=FaultKind.HTTP_500)])
    injector.script([ScriptedFault(FaultKind.HTTP_503, 7), ScriptedFault(FaultKind.PASS)],
                    provider="runcomfy", operation=Operation.STATUS)
    first = injector.decide("runcomfy", Operation.STATUS, Phase.QUEUED, "k", 0.0)
    assert (first.fault, first.retry_after, first.source) == (FaultKind.HTTP_503, 7, "script")
    second = injector.decide("runcomfy", Operation.STATUS, Phase.QUEUED, "k", 0.0)
    assert second.fault is None and second.source == "script"
    third = injector.decide("runcomfy", Operation.STATUS, Phase.QUEUED, "k", 0.0)
    assert third.fault is FaultKind.HTTP_500 and third.source == "rule"


def test_scripts_are_scoped_to_their_endpoint() -> None:
    injector = FaultInjector()
    injector.script([ScriptedFault(FaultKind.HTTP_502)], provider="therouter",
                    operation=Operation.SUBMIT)
    assert injector.decide("runcomfy", Operation.SUBMIT, None, "k", 0).fault is None
    assert injector.decide("therouter", Operation.STATUS, None, "k", 0).fault is None
    assert injector.scripted() == {"therouter:submit": ["http-502"]}
    assert injector.decide("therouter", Operation.SUBMIT, None, "k", 0).fault is FaultKind.HTTP_502


def test_rules_match_operation_provider_and_phase() -> None:
    rule = FaultRule(fault=FaultKind.HTTP_503, operation=Operation.STATUS, phase="running",
                     provider="therouter")
    assert rule.matches("therouter", Operation.STATUS, Phase.RUNNING)
    assert not rule.matches("therouter", Operation.STATUS, Phase.QUEUED)
    assert not rule.matches("therouter", Operation.RESULT, Phase.RUNNING)
    assert not rule.matches("runcomfy", Operation.STATUS, Phase.RUNNING)
    terminal = FaultRule(fault=FaultKind.DROP, phase="terminal")
    assert terminal.matches("x", Operation.STATUS, Phase.FAILED)
    assert not terminal.matches("x", Operation.SUBMIT, None)
    assert FaultRule(fault=FaultKind.DROP, phase="none").matches("x", Operation.SUBMIT, None)


def test_rule_rates_are_honoured_and_seeded() -> None:
    rules = [FaultRule(fault=FaultKind.HTTP_503, rate=0.05)]
    draws = [FaultInjector(rules=rules, seed=1).decide("p", Operation.STATUS, None, "k", 0).fault
             for _ in range(3)]
    assert len(set(draws)) == 1  # same seed, same first draw
    injector = FaultInjector(rules=rules, seed=2)
    hits = sum(injector.decide("p", Operation.STATUS, None, "k", 0).fault is not None
               for _ in range(4000))
    assert 120 < hits < 290  # ~5 % of 4000


def test_timeout_fault_adds_the_timeout_delay_and_latency_is_drawn() -> None:
    injector = FaultInjector(latency={Operation.STATUS: Fixed(0.25)}, timeout_delay=300)
    injector.script([ScriptedFault(FaultKind.TIMEOUT)])
    decision = injector.decide("p", Operation.STATUS, None, "k", 0)
    assert decision.fault is FaultKind.TIMEOUT and decision.delay == 300.25
    assert injector.decide("p", Operation.STATUS, None, "k", 0).delay == 0.25
    assert injector.decide("p", Operation.SUBMIT, None, "k", 0).delay == 0.0


def test_rate_limiter_windows_per_key_and_bucket() -> None:
    injector = FaultInjector(rate_limits={"submit": RateLimit(2, 60)})

    def wait(operation: Operation, key: str, at: float) -> float | None:
        return injector.decide("p", operation, None, key, at).retry_after

    assert [wait(Operation.SUBMIT, "a", t) for t in (0, 1)] == [None, None]
    assert wait(Operation.SUBMIT, "a", 10) == 50  # until the window passes
    assert wait(Operation.SUBMIT, "b", 10) is None  # another key has its own budget
    assert wait(Operation.STATUS, "a", 10) is None  # no poll budget configured
    assert wait(Operation.SUBMIT, "a", 60) is None  # a new window
    assert count_in_window(None, RateLimit(1, 10), 25.0) == ((20.0, 1), None)


def test_rate_limit_and_rule_config_errors() -> None:
    with pytest.raises(ConfigError, match="REQUESTS/SECONDS"):
        Config.from_mapping({"rate_limit": {"submit": "lots"}})
    with pytest.raises(ConfigError, match="phase 'done'"):
        Config.from_mapping({"faults": {"rules": [{"fault": "drop", "phase": "done"}]}})
    with pytest.raises(ConfigError, match=r"rate must be in \[0, 1\]"):
        FaultRule(fault=FaultKind.DROP, rate=2)
    assert FaultKind.HTTP_503.status == 503 and FaultKind.DROP.status is None
