"""check_client's verdicts on a catalogue of known-good and known-bad clients, in two orders.

Every client is real code on a real HTTP stack (see ``catalogue.py``): sync and async, requests
(+ tenacity, urllib3 Retry), httpx sync and async, anyio, the official openai SDK. Each case
states exactly which rules each scenario must find broken (an empty set: it must pass), and
runs in the default scenario order and reversed: the verdicts — and, for clients without
random jitter, the whole report — must not depend on the order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from wanmock.contracts.client import SCENARIOS, ClientReport, Scenario, check_client
from wanmock.examples.reference_clients import (
    generate_dashscope,
    generate_runcomfy,
    generate_therouter,
)

from . import catalogue as c

BY_NAME = {s.name: s for s in SCENARIOS}
#: A job that ends quickly, for clients that poll so fast a 30-180 s job would cost seconds.
QUICK = Scenario("quick", "no queue, a 1 s run",
                 {"lifecycle": {"queue_delay": "fixed(0)", "run_time": "fixed(1)"}})
QUICK_FAILURE = Scenario("quick-failure", "no queue, fails within 1 s",
                         {"lifecycle": {"queue_delay": "fixed(0)", "run_time": "fixed(1)",
                                        "failure_rate": 1.0, "failure_kinds": ["internal"]}},
                         succeeds=False)
#: Rules a threshold decides, and which.
THRESHOLDS = {"poll-interval": "min_poll_interval", "retry-backoff": "min_retry_backoff",
              "gave-up-early": "min_give_up", "gave-up-late": "max_give_up"}


def only(*names: str) -> tuple[Scenario, ...]:
    return tuple(BY_NAME[n] for n in names)


@dataclass(frozen=True)
class Case:
    name: str
    generate: Callable[..., Any]
    provider: str
    #: Scenario name -> the rules it must find broken.
    expected: Mapping[str, frozenset[str]]
    scenarios: tuple[Scenario, ...] = SCENARIOS
    #: False: the client's timing has random jitter (the openai SDK's retries), so only the
    #: verdicts and counts, not the simulated seconds, are compared between orders.
    deterministic: bool = True


def passes_all(name: str, generate: Callable[..., Any], provider: str,
               deterministic: bool = True) -> Case:
    return Case(name, generate, provider, {s.name: frozenset() for s in SCENARIOS},
                deterministic=deterministic)


def bad(name: str, generate: Callable[..., Any], provider: str,
        expected: Mapping[str, set[str]], scenarios: tuple[Scenario, ...],
        deterministic: bool = True) -> Case:
    return Case(name, generate, provider, {k: frozenset(v) for k, v in expected.items()},
                scenarios, deterministic)


CASES = [
    # Known good: the whole matrix passes.
    passes_all("reference-therouter (httpx)", generate_therouter, "therouter"),
    passes_all("reference-runcomfy (httpx)", generate_runcomfy, "runcomfy"),
    passes_all("reference-dashscope (httpx)", generate_dashscope, "dashscope"),
    passes_all("requests+tenacity", c.requests_tenacity_runcomfy, "runcomfy"),
    passes_all("AsyncOpenAI poller", c.async_openai_therouter, "therouter",
               deterministic=False),
    passes_all("httpx-async+anyio poller", c.httpx_anyio_runcomfy, "runcomfy"),
    # Known bad: exactly these rules, in exactly these scenarios.
    bad("no back-off: polls every 10 ms (httpx)", c.no_backoff, "therouter",
        {"quick": {"poll-interval"}, "quick-failure": {"poll-interval"}},
        (QUICK, QUICK_FAILURE)),
    bad("ignores Retry-After (AsyncOpenAI)", c.ignores_retry_after, "therouter",
        {"success": set(), "rate-limited": {"retry-after"}}, only("success", "rate-limited")),
    bad("polls after terminal (requests)", c.polls_after_terminal, "runcomfy",
        {"success": {"poll-after-terminal", "poll-interval"},
         "failure": {"poll-after-terminal", "poll-interval"}}, only("success", "failure")),
    bad("treats failed as success (requests)", c.treats_failed_as_success, "runcomfy",
        {"success": set(), "failure": {"expected-failure", "result-before-success"},
         "cancelled": {"expected-failure", "result-before-success"}},
        only("success", "failure", "cancelled")),
    bad("never gives up (httpx)", c.never_gives_up, "therouter",
        {"success": set(), "stuck": {"hung", "gave-up-late"}}, only("success", "stuck")),
    bad("wrong status word (httpx async)", c.wrong_status_word, "therouter",
        {"success": {"expected-result", "poll-after-terminal"}, "failure": set()},
        only("success", "failure")),
    bad("fetches result before success (requests)", c.result_before_success, "runcomfy",
        {"success": {"result-before-success"}, "failure": {"result-before-success"}},
        only("success", "failure")),
    bad("hammers after 5xx: urllib3 retries at once (requests)", c.hammers_after_5xx,
        "therouter", {"success": set(), "server-errors": {"retry-after", "retry-backoff"}},
        only("success", "server-errors")),
    bad("never calls the named provider (reference TheRouter client as runcomfy)",
        generate_therouter, "runcomfy",
        {"success": {"provider"}, "failure": {"provider"}, "rate-limited": {"provider"}},
        only("success", "failure", "rate-limited")),
    bad("crashes on a truncated body (httpx async + anyio)", c.crashes_on_truncated_body,
        "therouter",
        {"success": set(), "truncated-body": {"expected-result", "gave-up-early"}},
        only("success", "truncated-body")),
    bad("gives up too early: anyio.fail_after(60)", c.gives_up_too_early, "runcomfy",
        {"slow": {"expected-result", "gave-up-early"}, "stuck": {"gave-up-early"}},
        only("slow", "stuck")),
    bad("polls a job deleted at expiry (a 404) as if transient (httpx)", c.polls_a_deleted_job,
        "runcomfy", {"success": set(), "expired": {"poll-after-terminal"}},
        only("success", "expired")),
    bad("sends a refused cancel again at once (httpx, DashScope)", c.hammers_cancel,
        "dashscope", {"success": {"cancel-interval"}, "failure": {"cancel-interval"}},
        only("success", "failure")),
    bad("a synchronous DashScope call is not exercised by poll faults (httpx)",
        c.dashscope_sync_call, "dashscope",
        {"success": set(), "rate-limited": {"unexercised"}, "truncated-body": {"unexercised"}},
        only("success", "rate-limited", "truncated-body")),
    bad("crashes with a KeyError on a failed job (httpx)", c.crashes_on_a_failed_job,
        "runcomfy", {"success": set(),
                     "failure": {"expected-failure", "result-before-success"}},
        only("success", "failure")),
    bad("the official dashscope SDK: ImageSynthesis.call", c.dashscope_sdk_call, "dashscope",
        {"success": set(), "failure": set(), "cancelled": set(), "expired": set(),
         "rate-limited": {"expected-result", "gave-up-early"},
         "server-errors": {"retry-after", "expected-result", "gave-up-early"},
         "dropped-connection": {"expected-result", "gave-up-early"},
         "truncated-body": {"expected-result", "gave-up-early"},
         "stuck": {"hung", "gave-up-late"}},
        only("success", "failure", "cancelled", "expired", "rate-limited", "server-errors",
             "dropped-connection", "truncated-body", "stuck")),
    bad("sync mode on a 180 s job (OpenAI images.generate)", c.sync_mode_openai, "therouter",
        {"quick": set(), "slow": {"expected-result", "gave-up-early"}},
        (QUICK, BY_NAME["slow"]), deterministic=False),
]


def essence(report: ClientReport, deterministic: bool) -> dict[str, tuple[Any, ...]]:
    """What must not depend on the scenario order."""
    found = {}
    for r in report.results:
        counts = (r.rules, r.requests, r.polls, r.retries, r.job_ids)
        found[r.scenario.name] = ((*counts, r.outcome, round(r.simulated_seconds, 6))
                                  if deterministic else counts)
    return found


def check_messages(report: ClientReport) -> None:
    for result in report.results:
        for problem in result.problems:
            # Simulated time is an offset from submit (t+12.3 s), never an epoch.
            assert not re.search(r"\b1[6-9]\d{8}\b", problem.message), problem.message
            if problem.rule in THRESHOLDS:
                assert problem.threshold == THRESHOLDS[problem.rule], problem
                assert f"[{problem.threshold} = " in str(problem)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_catalogue_verdicts_in_both_orders(case: Case) -> None:
    assert set(case.expected) == {s.name for s in case.scenarios}
    reports = {}
    for order, scenarios in (("default", case.scenarios),
                             ("reversed", tuple(reversed(case.scenarios)))):
        report = check_client(case.generate, provider=case.provider, scenarios=scenarios)
        assert [r.scenario.name for r in report.results] == [s.name for s in scenarios]
        assert report.verdicts() == case.expected, f"{order} order:\n{report.render()}"
        check_messages(report)
        reports[order] = report
    assert (essence(reports["default"], case.deterministic)
            == essence(reports["reversed"], case.deterministic))


def test_the_catalogue_covers_what_it_claims() -> None:
    good = [case for case in CASES if not any(case.expected.values())]
    bad_cases = [case for case in CASES if any(case.expected.values())]
    assert len(good) >= 3 and len(bad_cases) >= 10
    broken = set().union(*(rules for case in bad_cases for rules in case.expected.values()))
    assert broken >= {"poll-interval", "retry-after", "poll-after-terminal", "expected-failure",
                      "hung", "gave-up-late", "expected-result", "result-before-success",
                      "retry-backoff", "provider", "gave-up-early"}
