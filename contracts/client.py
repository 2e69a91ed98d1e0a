"""Client side: run the user's client over the scenario matrix and judge what it did.

``check_client(generate, provider="therouter")`` serves a fresh fake per scenario on a free
loopback port, calls ``generate(base_url, api_key, prompt)`` (sync or async) in a worker thread,
and reads the journal. Time: the fake runs on a fake clock that moves when the client sleeps —
``time.sleep`` and ``asyncio.sleep`` are replaced, for the client's thread only, by a function
that advances the clock; a client that accepts a ``sleep`` keyword gets that function directly.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, SupportsIndex

from wanmock.server import Config, FakeClock, create_app
from wanmock.server.faults import ScriptedFault
from wanmock.server.journal import Journal
from wanmock.server.state import at_once
from wanmock.server.vocab import FaultKind, Operation
from wanmock.server.web.serve import LiveServer

from . import assertions

__all__ = ["SCENARIOS", "ClientHung", "ClientReport", "Scenario", "ScenarioResult",
           "check_client"]


class ClientHung(BaseException):
    """Raised inside a client that is still waiting past the simulated deadline.

    A ``BaseException`` so that a client's ``except Exception`` cannot swallow it.
    """


@dataclass(frozen=True, slots=True)
class Scenario:
    """One situation the client must handle, and what handling it well means."""

    name: str
    description: str
    #: Config overlay of the fake for this scenario.
    config: Mapping[str, Any] = field(default_factory=dict)
    #: Faults scripted on the status endpoint before the client starts.
    script: tuple[ScriptedFault, ...] = ()
    #: ``True``: the client should return a result; ``False``: it should raise.
    succeeds: bool = True


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("success", "the job queues, runs 30-180 s and succeeds"),
    Scenario("failure", "the job fails with an internal error",
             {"lifecycle": {"failure_rate": 1.0, "failure_kinds": ["internal"]}}, succeeds=False),
    Scenario("moderation", "the job fails content moderation",
             {"lifecycle": {"failure_rate": 1.0, "failure_kinds": ["moderation"]}},
             succeeds=False),
    Scenario("cancelled", "the provider cancels the queued job after 20 s",
             {"lifecycle": {"scenario": "cancel-after-20s"}}, succeeds=False),
    Scenario("expired", "the job expires 90 s after submit, before it finishes",
             {"lifecycle": {"scenario": "expire-after-90s", "run_time": "fixed(150)"}},
             succeeds=False),
    Scenario("rate-limited", "three polls answer 429 with Retry-After: 10",
             script=(ScriptedFault(FaultKind.HTTP_429, 10),) * 3),
    Scenario("server-errors", "polls answer 503, 502 and 500 before recovering",
             script=(ScriptedFault(FaultKind.HTTP_503, 2), ScriptedFault(FaultKind.HTTP_502),
                     ScriptedFault(FaultKind.HTTP_500))),
    Scenario("dropped-connection", "one poll's connection drops mid-response",
             script=(ScriptedFault(FaultKind.DROP),)),
    Scenario("truncated-body", "one poll's JSON body arrives cut in half",
             script=(ScriptedFault(FaultKind.TRUNCATED_JSON),)),
    Scenario("slow", "20 s in the queue and a 160 s run: the documented 180 s worst case",
             {"lifecycle": {"queue_delay": "fixed(20)", "run_time": "fixed(160)"}}),
    Scenario("stuck", "the job never leaves the queue: the client must give up",
             {"lifecycle": {"stuck_rate": 1.0}}, succeeds=False),
)


@dataclass
class ScenarioResult:
    """How the client did in one scenario."""

    scenario: Scenario
    outcome: str  # "returned", "raised <Type>: <msg>", or "hung"
    problems: list[str]
    requests: int
    simulated_seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class ClientReport:
    """Results over the whole matrix."""

    provider: str
    results: list[ScenarioResult]

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def result(self, name: str) -> ScenarioResult:
        return next(r for r in self.results if r.scenario.name == name)

    def render(self) -> str:
        lines = [f"wanmock client check ({self.provider})"]
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            lines.append(f"  {mark}  {r.scenario.name:<19} {r.outcome} after "
                         f"{r.simulated_seconds:.0f} s simulated, {r.requests} requests")
            lines.extend(f"        - {p}" for p in r.problems)
        passed = sum(r.passed for r in self.results)
        lines.append(f"{passed} passed, {len(self.results) - passed} failed")
        return "\n".join(lines)


def check_client(
    generate: Callable[..., Any],
    *,
    provider: str,
    scenarios: Sequence[Scenario] = SCENARIOS,
    api_key: str = "wanmock-test-key",
    prompt: str = "a lighthouse at dusk",
    min_poll_interval: float = 1.0,
    give_up_by: float = 3600.0,
    real_timeout: float = 30.0,
    seed: int = 1,
) -> ClientReport:
    """Run ``generate`` through each scenario; see :data:`SCENARIOS` for the default matrix."""
    return ClientReport(provider, [
        _run(generate, provider, s, api_key, prompt, min_poll_interval, give_up_by,
             real_timeout, seed)
        for s in scenarios
    ])


def _run(generate: Callable[..., Any], provider: str, scenario: Scenario, api_key: str,
         prompt: str, min_interval: float, give_up_by: float, real_timeout: float,
         seed: int) -> ScenarioResult:
    clock = FakeClock()
    start = clock.now()
    config = Config().replace(server={"seed": seed}, **scenario.config)
    app = create_app(config, clock=clock)
    rt = app.state.wanmock
    if scenario.script:
        at_once(rt.state.script(scenario.script, provider=None, operation=Operation.STATUS))
    outcome: list[str] = []
    with LiveServer(app) as server, _simulated_sleep(clock, start + give_up_by * 2) as sleeper:

        def target() -> None:
            sleeper.adopt()
            try:
                kwargs = {"sleep": sleeper.sync_sleep} if _accepts_sleep(generate) else {}
                value = generate(server.url, api_key, prompt, **kwargs)
                if inspect.isawaitable(value):
                    value = asyncio.run(_awaited(value))
                outcome.append("returned" if value else "returned nothing")
            except ClientHung:
                outcome.append("hung")
            except Exception as exc:  # the client reported a failure: that is an outcome
                outcome.append(f"raised {type(exc).__name__}: {str(exc)[:120]}")

        worker = threading.Thread(target=target, daemon=True, name="wanmock-client")
        worker.start()
        worker.join(real_timeout)
        if worker.is_alive():
            outcome.append(f"hung (no answer within {real_timeout:g} s real time)")
    problems = _judge(scenario, outcome[0], rt.journal, min_interval, give_up_by)
    return ScenarioResult(scenario, outcome[0], problems, rt.journal.total,
                          clock.now() - start)


def _judge(scenario: Scenario, outcome: str, journal: Journal, min_interval: float,
           give_up_by: float) -> list[str]:
    problems = []
    if outcome.startswith("hung"):
        problems.append(f"the client never returned ({outcome}); it should "
                        + ("succeed" if scenario.succeeds else "report the failure"))
    elif scenario.succeeds and outcome != "returned":
        problems.append(f"expected a result, but the client {outcome}")
    elif not scenario.succeeds and not outcome.startswith("raised"):
        problems.append(f"expected the client to report a failure, but it {outcome}")
    checks: list[Callable[[], None]] = [
        lambda: assertions.assert_stopped_polling_at_terminal(journal),
        lambda: assertions.assert_polled_no_faster_than(journal, min_interval),
        lambda: assertions.assert_honoured_retry_after(journal),
        lambda: assertions.assert_fetched_result_only_after_success(journal),
        lambda: assertions.assert_backed_off_on_5xx(journal, min_interval),
        lambda: assertions.assert_gave_up_by(journal, give_up_by),
    ]
    for check in checks:
        try:
            check()
        except AssertionError as exc:
            problems.append(str(exc))
    return problems


async def _awaited(value: Any) -> Any:
    return await value


def _accepts_sleep(generate: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(generate).parameters
    except (TypeError, ValueError):
        return False
    return "sleep" in parameters


class _Sleeper:
    """Sleep functions that advance the fake clock when called from the client's thread."""

    def __init__(self, clock: FakeClock, hang_at: float) -> None:
        self.clock = clock
        self.hang_at = hang_at
        self.thread: int | None = None
        self.real_sleep = time.sleep
        self.real_async_sleep = asyncio.sleep

    def adopt(self) -> None:
        self.thread = threading.get_ident()

    def _mine(self) -> bool:
        return threading.get_ident() == self.thread

    def _advance(self, seconds: float | SupportsIndex) -> None:
        if self.clock.now() >= self.hang_at:
            raise ClientHung(f"still waiting after {self.hang_at:g} simulated seconds")
        self.clock.advance(max(0.0, float(seconds)))

    def sync_sleep(self, seconds: float | SupportsIndex) -> None:
        if self._mine():
            self._advance(seconds)
            self.real_sleep(0)
        else:
            self.real_sleep(seconds)

    async def async_sleep(self, delay: float, result: Any = None) -> Any:
        if self._mine():
            self._advance(delay)
            return await self.real_async_sleep(0, result)
        return await self.real_async_sleep(delay, result)


@contextmanager
def _simulated_sleep(clock: FakeClock, hang_at: float) -> Iterator[_Sleeper]:
    sleeper = _Sleeper(clock, hang_at)
    time.sleep = sleeper.sync_sleep
    asyncio.sleep = sleeper.async_sleep
    try:
        yield sleeper
    finally:
        time.sleep = sleeper.real_sleep
        asyncio.sleep = sleeper.real_async_sleep
