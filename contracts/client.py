"""Client side: run the user's client over the scenario matrix and judge what it did.

``check_client(generate, provider="therouter")`` serves a fresh fake per scenario (one uvicorn
server on a free loopback port, a new app, clock and seed per scenario), calls
``generate(base_url, api_key, prompt)`` — sync, or ``async def`` — in a worker thread, and judges
the journal's summaries against :class:`Thresholds`.

Time: each scenario runs on a fake clock the client cannot tell from a real one. Async clients
run on a virtual-time event loop that jumps the clock when nothing else can happen; sync clients'
``time.sleep``/``time.monotonic``/``time.time`` follow the clock in the client's thread only;
a request parked on the fake clock (TheRouter's sync mode, an injected delay) is released by a
server-side autojump once the server is otherwise quiet. Nothing stays patched afterwards and
scenario order cannot matter: see :mod:`wanmock.contracts.simtime` for the design and why it
cannot leak. A client that accepts a ``sleep`` keyword also gets the simulated ``sleep``
directly.

>>> from wanmock.examples.reference_clients import generate_therouter
>>> report = check_client(generate_therouter, provider="therouter")   # doctest: +SKIP
>>> print(report.render())                                             # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wanmock.server import Config, FakeClock, create_app
from wanmock.server.dialects import default_registry
from wanmock.server.faults import ScriptedFault
from wanmock.server.journal import JobSummary, Journal
from wanmock.server.lifecycle import state_at
from wanmock.server.state import at_once
from wanmock.server.vocab import FaultKind, Operation

from . import assertions
from .autojump import Autojump, TrackedServer, Watched
from .simtime import ClientHung, Timeline, real_time, simulated, unroute

_real_monotonic, _real_sleep = real_time()

__all__ = ["RULES", "SCENARIOS", "ClientHung", "ClientReport", "Problem", "Scenario",
           "ScenarioResult", "Thresholds", "check_client"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """What counts as well-behaved, in simulated seconds. Every report line that a threshold
    decided names it and its value.

    The defaults are lenient readings of the providers' docs: TheRouter recommends polling
    every 5–10 s and documents jobs of 30–180 s (so a client should wait at least that long),
    and both providers answer overload with 429/503 (a client must not hammer back).
    """

    #: Least gap between two polls of a job (retries after an error answer excluded).
    min_poll_interval: float = 1.0
    #: Least wait after an error answer (5xx, 429, a dropped or corrupted body) before trying
    #: again — the client's own retry or its HTTP library's. Catches hammering (an immediate
    #: retry); the OpenAI SDK's first retry comes 0.375–0.5 s later and passes.
    min_retry_backoff: float = 0.25
    #: A client must keep waiting for an unfinished job at least this long before giving up
    #: (the documented worst case of a job is 180 s).
    min_give_up: float = 180.0
    #: ...and must stop asking about it within this long of submitting it.
    max_give_up: float = 3600.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not value >= 0:
                raise ValueError(f"Thresholds.{f.name} must be >= 0 s, got {value!r}")
        if self.min_give_up > self.max_give_up:
            raise ValueError(f"Thresholds.min_give_up ({self.min_give_up:g} s) is later than "
                             f"max_give_up ({self.max_give_up:g} s)")


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


@dataclass(frozen=True, slots=True)
class Problem:
    """One rule a client broke in one scenario.

    ``rule`` is a stable name (``poll-interval``, ``retry-after``, ``hung``, ...); ``threshold``
    names the :class:`Thresholds` field that decided it, if one did, and ``limit`` its value.
    """

    rule: str
    message: str
    threshold: str | None = None
    limit: float | None = None

    def __str__(self) -> str:
        if self.threshold is None:
            return f"[{self.rule}] {self.message}"
        return f"[{self.rule}] {self.message} [{self.threshold} = {self.limit:g} s]"


#: Exceptions of a client's own code going wrong (reading a field that is not there, calling
#: None): a crash, never the client reporting that the job failed.
_CRASHES = (KeyError, IndexError, TypeError, AttributeError, NameError, ZeroDivisionError)

#: Every rule a :class:`Problem` can name.
RULES = ("hung", "expected-result", "expected-failure", "provider", "journal-overflow",
         "poll-after-terminal", "poll-interval", "retry-after", "retry-backoff",
         "result-before-success", "gave-up-early", "gave-up-late", "unexercised",
         "cancel-interval")


@dataclass
class ScenarioResult:
    """How the client did in one scenario."""

    scenario: Scenario
    #: "returned", "returned nothing", "raised <Type>: <msg>" (a reported failure), "crashed
    #: with <Type>: <msg>" (KeyError, TypeError...: the client's own code broke) or "hung ...".
    outcome: str
    problems: list[Problem]
    requests: int
    simulated_seconds: float
    #: Status requests that were polls, and requests that followed an error answer (retries,
    #: the client's own or its HTTP library's).
    polls: int = 0
    retries: int = 0
    job_ids: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def rules(self) -> frozenset[str]:
        """The names of the rules broken."""
        return frozenset(p.rule for p in self.problems)


@dataclass
class ClientReport:
    """Results over the whole matrix."""

    provider: str
    results: list[ScenarioResult]
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def result(self, name: str) -> ScenarioResult:
        """The result of the scenario called ``name``."""
        for r in self.results:
            if r.scenario.name == name:
                return r
        raise KeyError(f"no scenario {name!r} in this report; it ran: "
                       f"{', '.join(r.scenario.name for r in self.results)}")

    def verdicts(self) -> dict[str, frozenset[str]]:
        """Broken rules by scenario name (empty: passed)."""
        return {r.scenario.name: r.rules for r in self.results}

    def render(self) -> str:
        t = self.thresholds
        lines = [f"wanmock client check ({self.provider}; polls >= {t.min_poll_interval:g} s "
                 f"apart, back-off >= {t.min_retry_backoff:g} s, give up between "
                 f"{t.min_give_up:g} s and {t.max_give_up:g} s)"]
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            lines.append(f"  {mark}  {r.scenario.name:<19} {r.outcome} after "
                         f"{r.simulated_seconds:.0f} s simulated, {r.requests} requests "
                         f"({r.polls} polls, {r.retries} retries)")
            lines.extend(f"        - {p}" for p in r.problems)
        passed = sum(r.passed for r in self.results)
        lines.append(f"{passed} passed, {len(self.results) - passed} failed")
        return "\n".join(lines)


def check_client(
    generate: Callable[..., Any],
    *,
    provider: str,
    scenarios: Sequence[Scenario] = SCENARIOS,
    thresholds: Thresholds | None = None,
    api_key: str = "wanmock-test-key",
    prompt: str = "a lighthouse at dusk",
    real_timeout: float = 30.0,
    seed: int = 1,
) -> ClientReport:
    """Run ``generate(base_url, api_key, prompt)`` through each scenario and judge it.

    ``provider`` is the provider the client is meant to call (one of the dialect registry's
    names); a client that never reaches it fails every scenario. ``thresholds`` decide what
    counts as polite. ``real_timeout`` bounds each scenario in real seconds (a client blocked on
    something that is not simulated). Each scenario's fake is seeded from ``seed`` and the
    scenario's name, so job ids differ between scenarios and do not depend on their order.
    """
    default_registry().get(provider)  # an unknown name: ConfigError listing the known ones
    thresholds = thresholds or Thresholds()
    if not scenarios:
        return ClientReport(provider, [], thresholds)
    stages = [_Stage(s, seed) for s in scenarios]
    results = []
    with simulated() as route, contextlib.ExitStack() as servers:
        server = servers.enter_context(TrackedServer(stages[0].watched))
        for previous, stage in zip([None, *stages], stages, strict=False):
            if previous is not None and previous.abandoned:
                # its client is still running and may still talk to this server: the next
                # scenarios get a server of their own, out of its reach
                server = servers.enter_context(TrackedServer(stage.watched))
            server.serve(stage.watched)
            results.append(stage.run(generate, server, route, provider, thresholds, api_key,
                                     prompt, real_timeout))
    return ClientReport(provider, results, thresholds)


def _seed(base: int, scenario: Scenario) -> int:
    return (base * 1_000_003 + zlib.crc32(scenario.name.encode())) % 2**32


class _Stage:
    """One scenario's fake: its app, clock and journal."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.clock = FakeClock()
        config = Config().replace(server={"seed": _seed(seed, scenario)}, **scenario.config)
        app = create_app(config, clock=self.clock)
        self.rt = app.state.wanmock
        if scenario.script:
            at_once(self.rt.state.script(scenario.script, provider=None,
                                         operation=Operation.STATUS))
        self.watched = Watched(app, self.clock)
        #: The client was still running when the scenario's real-time bound ran out.
        self.abandoned = False

    def run(self, generate: Callable[..., Any], server: TrackedServer,
            route: Callable[[Timeline | None], None], provider: str, thresholds: Thresholds,
            api_key: str, prompt: str, real_timeout: float) -> ScenarioResult:
        start = self.clock.now()
        timeline = Timeline(self.clock, server, hang_at=start + 2 * thresholds.max_give_up)
        outcome: list[str] = []
        url = server.url

        def client() -> None:
            route(timeline)
            try:
                kwargs = {"sleep": timeline.sleep} if _accepts_sleep(generate) else {}
                value = generate(url, api_key, prompt, **kwargs)
                if inspect.isawaitable(value):
                    with asyncio.Runner(loop_factory=timeline.new_loop) as runner:
                        value = runner.run(_awaited(value))
                outcome.append("returned" if value else "returned nothing")
            except ClientHung:
                outcome.append("hung")
            except asyncio.CancelledError:
                outcome.append("hung" if timeline.hung else "raised CancelledError")
            except BaseException as exc:  # the client reported a failure: that is an outcome
                # the port differs from run to run; the report should not
                message = str(exc).replace(url, "<base_url>")[:120]
                how = "crashed with" if isinstance(exc, _CRASHES) else "raised"
                outcome.append(f"{how} {type(exc).__name__}: {message}")
            finally:
                route(None)

        driver = Autojump(server, threshold=0.005, allowed=timeline.server_may_jump,
                          lock=timeline.lock)
        worker = threading.Thread(target=client, daemon=True, name="wanmock-client")
        with driver:
            worker.start()
            worker.join(real_timeout)
        if worker.is_alive():
            unroute(worker)
            self.abandoned = True
            outcome.append(f"hung (no answer within {real_timeout:g} s real time; does it "
                           "sleep or wait in a way wanmock cannot simulate?)")
        end = self.clock.now()
        self._settle(server)
        journal = self.rt.journal
        keys = journal.keys()
        problems = _judge(self.scenario, outcome[0], journal, provider, thresholds, start, end,
                          self._abandoned(end))
        problems.extend(self._unexercised())
        return ScenarioResult(
            self.scenario, outcome[0], problems,
            journal.total, end - start,
            polls=sum(k.polls + k.lists for k in keys), retries=sum(k.retries for k in keys),
            job_ids=tuple(s.job_id for s in journal.jobs()))

    def _unexercised(self) -> list[Problem]:
        """A scenario none of whose scripted faults was served did not test the client: it
        cannot pass (a client that only calls synchronously never polls, where they wait)."""
        script = self.scenario.script
        if not script:
            return []
        left = at_once(self.rt.state.scripted())
        if sum(len(faults) for faults in left.values()) < len(script):
            return []
        faults = ", ".join(str(scripted.fault) for scripted in script)
        return [Problem("unexercised", f"the scenario's faults ({faults}) wait on status polls, "
                        "and the client made none (a synchronous call?): it was not tested "
                        "against them")]

    def _settle(self, server: TrackedServer) -> None:
        """Let the server finish what the client started: the journal records a request after
        its answer went out, so the client may have returned before its last request was
        recorded; requests still parked on the clock (the client gave up on them) are woken
        and answered too. Bounded in real time: a stuck server must not hang the check."""
        deadline = _real_monotonic() + 2.0
        while not server.quiet() and _real_monotonic() < deadline:
            _real_sleep(0.0005)
        self.watched.release()
        while self.watched.in_flight and _real_monotonic() < deadline:
            _real_sleep(0.0005)

    def _abandoned(self, at: float) -> Callable[[JobSummary], float | None]:
        """When the client stopped waiting for a job it left unfinished, or ``None`` if the job
        ended: ``at`` if the job was still queued or running then (the server's truth, not what
        the client was shown); the time of the client's own cancel, if one took effect (it
        leaves a terminal job, but cancelling an unfinished job is giving up on it)."""
        state = self.rt.state

        def abandoned(job: JobSummary) -> float | None:
            found = at_once(state.read(job.job_id, at)).stored
            if found is None:
                return None
            record = found.record
            # the record's cancel time is the client's only if its cancel made it (a job the
            # provider had cancelled already keeps the provider's time)
            if job.cancelled_at is not None and record.cancelled_at == job.cancelled_at:
                return job.cancelled_at
            return None if state_at(record, at).phase.terminal else at

        return abandoned


_Check = tuple[str, str | None, Callable[[Journal, Thresholds, str], None]]

#: The journal's verdicts on one job: rule, the threshold that decides it (if any), the
#: assertion. Judged job by job, so messages give times as offsets from that job's submit.
_CHECKS: tuple[_Check, ...] = (
    ("poll-after-terminal", None,
     lambda j, t, job: assertions.assert_stopped_polling_at_terminal(j, job)),
    ("poll-interval", "min_poll_interval",
     lambda j, t, job: assertions.assert_polled_no_faster_than(j, t.min_poll_interval, job)),
    ("cancel-interval", "min_poll_interval",
     lambda j, t, job: assertions.assert_cancelled_no_faster_than(j, t.min_poll_interval,
                                                                   job)),
    ("retry-after", None, lambda j, t, job: assertions.assert_honoured_retry_after(j, job)),
    ("retry-backoff", "min_retry_backoff",
     lambda j, t, job: assertions.assert_backed_off_on_5xx(j, t.min_retry_backoff, job)),
    ("result-before-success", None,
     lambda j, t, job: assertions.assert_fetched_result_only_after_success(j, job)),
    ("gave-up-late", "max_give_up",
     lambda j, t, job: assertions.assert_gave_up_by(j, t.max_give_up, job)),
)


def _judge(scenario: Scenario, outcome: str, journal: Journal, provider: str,
           thresholds: Thresholds, started_at: float, ended_at: float,
           abandoned: Callable[[JobSummary], float | None]) -> list[Problem]:
    problems = []
    if outcome.startswith("hung"):
        problems.append(Problem("hung", f"the client never returned ({outcome}); it should "
                                + ("succeed" if scenario.succeeds else "report the failure")))
    elif scenario.succeeds and outcome != "returned":
        problems.append(Problem("expected-result", f"expected a result, but the client "
                                                   f"{outcome}"))
    elif not scenario.succeeds and not outcome.startswith("raised"):
        problems.append(Problem("expected-failure", f"expected the client to report a "
                                                    f"failure, but it {outcome}"))
    reached = journal.requests_by_provider()
    if not reached.get(provider):
        called = ", ".join(f"{name} ({n} requests)" for name, n in sorted(reached.items()))
        problems.append(Problem("provider", f"no request reached {provider}; the client "
                                f"called {called or 'nothing wanmock serves'}"))
    if journal.dropped_jobs or journal.dropped_keys:
        problems.append(Problem(
            "journal-overflow", f"the journal overflowed ({journal.dropped_jobs} job and "
            f"{journal.dropped_keys} key summaries dropped): the client made too many jobs to "
            "judge; raise journal.max_jobs / journal.max_keys in the scenario's config"))
        return problems
    jobs = journal.jobs()
    for rule, threshold, check in _CHECKS:
        limit = getattr(thresholds, threshold) if threshold else None
        for job in jobs:
            try:
                check(journal, thresholds, job.job_id)
            except AssertionError as exc:
                problems.append(Problem(rule, str(exc), threshold, limit))
                break
    problems.extend(_before_any_job(journal, thresholds, started_at))
    try:
        assertions.assert_listed_no_faster_than(journal, thresholds.min_poll_interval,
                                                started_at)
    except AssertionError as exc:
        problems.append(Problem("poll-interval", str(exc), "min_poll_interval",
                                thresholds.min_poll_interval))
    if not outcome.startswith("hung"):
        early = _gave_up_early(journal, thresholds, abandoned)
        if early is not None:
            problems.append(early)
    return problems


def _before_any_job(journal: Journal, thresholds: Thresholds,
                    started_at: float) -> list[Problem]:
    """Retries and ignored ``Retry-After`` on requests that addressed no job (submits): the key
    summaries hold what the job summaries do not. Times are offsets from the scenario's start
    (there is no submit to count from)."""
    problems = []
    jobs = journal.jobs()
    keys = journal.keys()
    ignored = sum(k.ignored_retry_after for k in keys) - sum(j.ignored_retry_after for j in jobs)
    if ignored > 0:
        first = next((k.first_ignored_retry_after for k in keys
                      if k.first_ignored_retry_after is not None), None)
        where = f" (first at t+{first.at - started_at:.1f} s: {first.detail})" if first else ""
        problems.append(Problem(
            "retry-after", f"the client ignored Retry-After: {ignored} request(s) that addressed "
            f"no job came before the time it was told to wait{where}"))
    job_gaps = [j.min_retry_gap for j in jobs if j.min_retry_gap is not None]
    for key in keys:
        gap, evidence = key.min_retry_gap, key.fastest_retry
        if (gap is not None and evidence is not None
                and assertions.shorter(gap, thresholds.min_retry_backoff)
                and gap not in job_gaps):
            problems.append(Problem(
                "retry-backoff", f"the client retried {gap:.3f} s after an error answer (at "
                f"t+{evidence.at - started_at:.1f} s: {evidence.detail}); back off at least "
                f"{thresholds.min_retry_backoff:g} s", "min_retry_backoff",
                thresholds.min_retry_backoff))
            break
    return problems


def _gave_up_early(journal: Journal, thresholds: Thresholds,
                   abandoned: Callable[[JobSummary], float | None]) -> Problem | None:
    """A job the client stopped waiting for (or cancelled) while it was unfinished, sooner than
    ``min_give_up`` after submitting it."""
    for job in journal.jobs():
        if job.submitted_at is None:
            continue
        stopped = abandoned(job)
        if stopped is None:
            continue
        waited = stopped - job.submitted_at
        if assertions.shorter(waited, thresholds.min_give_up):
            how = ("cancelled job" if stopped == job.cancelled_at
                   else "stopped waiting for job")
            return Problem(
                "gave-up-early", f"the client {how} {job.job_id} at {job.offset(stopped)} "
                f"while it was unfinished; jobs may take up to {thresholds.min_give_up:g} s, "
                "wait at least that long before giving up", "min_give_up",
                thresholds.min_give_up)
    return None


async def _awaited(value: Any) -> Any:
    return await value


def _accepts_sleep(generate: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(generate):
        return False  # its asyncio/anyio sleeps already follow the simulated clock
    try:
        parameters = inspect.signature(generate).parameters
    except (TypeError, ValueError):
        return False
    return "sleep" in parameters
