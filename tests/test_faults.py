import pytest

from wanmock.server.config import Config
from wanmock.server.distributions import Fixed
from wanmock.server.errors import ConfigError
from wanmock.server.faults import FaultInjector, FaultRule, RateLimit, RateLimiter, ScriptedFault
from wanmock.server.vocab import FaultKind, Operation, Phase


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
    limiter = RateLimiter({"submit": RateLimit(2, 60)})
    assert [limiter.check("submit", "a", t) for t in (0, 1)] == [None, None]
    assert limiter.check("submit", "a", 10) == 50  # until the window passes
    assert limiter.check("submit", "b", 10) is None  # another key has its own budget
    assert limiter.check("poll", "a", 10) is None  # no poll budget configured
    assert limiter.check("submit", "a", 60) is None  # a new window


def test_rate_limit_and_rule_config_errors() -> None:
    with pytest.raises(ConfigError, match="REQUESTS/SECONDS"):
        Config.from_mapping({"rate_limit": {"submit": "lots"}})
    with pytest.raises(ConfigError, match="phase 'done'"):
        Config.from_mapping({"faults": {"rules": [{"fault": "drop", "phase": "done"}]}})
    with pytest.raises(ConfigError, match=r"rate must be in \[0, 1\]"):
        FaultRule(fault=FaultKind.DROP, rate=2)
    assert FaultKind.HTTP_503.status == 503 and FaultKind.DROP.status is None
