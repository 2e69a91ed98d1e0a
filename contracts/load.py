"""``wanmock load``: many simulated clients doing submit → poll → download against a base URL.

Bounded by ``duration`` and ``max_jobs``; loopback-only unless ``allow_remote`` (then the CLI asks
for ``--yes`` after stating the cost, as the smoke mode does). Reports throughput, latency
percentiles per endpoint, poll amplification (polls per finished job), errors by kind, outcomes,
and a verdict: too many failed requests fail the run.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import statistics
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from wanmock.server.clock import Clock, FakeClock
from wanmock.server.vocab import Phase

from .drivers import DRIVERS, Driver

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FIRST",
    "DEFAULT_MAX_ERROR_RATE",
    "LoadReport",
    "PollPolicy",
    "find_dashboard",
    "is_loopback",
    "run_load",
]


class PollPolicy(enum.StrEnum):
    """How a simulated client spaces its polls."""

    FIXED = "fixed"  #: every ``poll_interval`` seconds
    BACKOFF = "backoff"  #: interval doubles after each poll, capped at 8x
    RETRY_AFTER = "retry-after"  #: fixed, but a 429/503 ``Retry-After`` is waited out


def is_loopback(base_url: str) -> bool:
    """True when ``base_url`` names this machine."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Back-off after a connection error or a refused submit: the first wait, doubling per
#: consecutive failure, capped (simulated seconds on a fake clock).
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 8.0
#: The error-rate limit when none is given (connection errors fail the run at any rate).
DEFAULT_MAX_ERROR_RATE = 0.01
_TERMINAL = tuple(str(phase) for phase in Phase if phase.terminal)


@dataclass
class LoadReport:
    """What a load run measured.

    Every submitted job (a submit answered with a job id) ends in exactly one outcome: a terminal
    phase, or ``unfinished`` when the run stopped first — so finished + unfinished = submitted.
    """

    provider: str
    base_url: str
    clients: int
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    #: Polls of the jobs that finished (poll amplification: these per finished job; the polls
    #: of a job the run left unfinished have no finished job to count against).
    finished_polls: int = 0
    submitted: int = 0
    #: Requests that got no HTTP answer at all (refused, dropped, timed out).
    connection_errors: int = 0
    #: The share of failed requests that fails the run; ``None``: any connection error, or
    #: more than :data:`DEFAULT_MAX_ERROR_RATE`.
    max_error_rate: float | None = None
    #: The live dashboard of the wanmock server loaded (``None``: not a wanmock server, or
    #: a remote target, which is never probed).
    dashboard: str | None = None
    _marks: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    @property
    def requests(self) -> int:
        """Requests answered (with any status)."""
        return sum(len(v) for v in self.latencies.values())

    @property
    def attempts(self) -> int:
        """Requests sent: answered ones plus those that got no answer."""
        return self.requests + self.connection_errors

    @property
    def finished(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome != "unfinished")

    @property
    def error_rate(self) -> float:
        return sum(self.errors.values()) / self.attempts if self.attempts else 0.0

    @property
    def verdict(self) -> str | None:
        """Why the run failed (too many failed requests), or ``None`` when it passed."""
        failed = sum(self.errors.values())
        share = f"{failed} of {self.attempts} requests failed ({self.error_rate:.2%})"
        if self.max_error_rate is None:
            if self.connection_errors:
                return (f"{self.connection_errors} request(s) got no answer (connection "
                        f"errors); {share}")
            limit = DEFAULT_MAX_ERROR_RATE
        else:
            limit = self.max_error_rate
        if self.error_rate > limit:
            return f"{share}, more than the {limit:.2%} allowed"
        return None

    @property
    def ok(self) -> bool:
        return self.verdict is None

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (``--json``)."""
        finished = self.finished
        return {
            "provider": self.provider, "base_url": self.base_url, "clients": self.clients,
            "seconds": round(self.seconds, 3), "requests": self.requests,
            "attempts": self.attempts,
            "throughput_rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "submitted": self.submitted, "finished": finished,
            "unfinished": self.outcomes["unfinished"],
            "poll_amplification": (round(self.finished_polls / finished, 2) if finished
                                   else None),
            "latency_ms": {name: _percentiles(values) for name, values in
                           sorted(self.latencies.items())},
            "errors": dict(self.errors.most_common()),
            "connection_errors": self.connection_errors,
            "error_rate": round(self.error_rate, 5),
            "max_error_rate": self.max_error_rate,
            "outcomes": {k: self.outcomes[k] for k in (*_TERMINAL, "unfinished")
                         if self.outcomes[k]},
            "ok": self.ok, "verdict": self.verdict, "dashboard": self.dashboard,
        }

    def render(self) -> str:
        """The report as aligned tables, for people."""
        data = self.summary()
        amplification = data["poll_amplification"]
        lines = [f"wanmock load: {data['clients']} clients against {self.provider} at "
                 f"{self.base_url} for {data['seconds']} s",
                 f"  {data['requests']} requests answered, {data['throughput_rps']} req/s; "
                 f"{data['submitted']} jobs submitted = {data['finished']} finished + "
                 f"{data['unfinished']} unfinished",
                 f"  poll amplification: "
                 f"{'n/a' if amplification is None else amplification} polls per finished job",
                 "",
                 f"  {'endpoint':<12} {'count':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"]
        for name, p in data["latency_ms"].items():
            lines.append(f"  {name:<12} {p['count']:>7} {p['p50']:>8.2f} {p['p90']:>8.2f} "
                         f"{p['p99']:>8.2f}")
        lines += ["", f"  {'outcome':<12} {'jobs':>7}"]
        lines += [f"  {name:<12} {n:>7}" for name, n in data["outcomes"].items()] or [
            f"  {'(none)':<12} {0:>7}"]
        width = max([12, *map(len, data["errors"])])
        lines += ["", f"  {'error':<{width}} {'count':>7} {'share':>7}"]
        attempts = self.attempts or 1
        lines += [f"  {name:<{width}} {n:>7} {n / attempts:>7.2%}"
                  for name, n in data["errors"].items()] or [f"  {'(none)':<{width}} {0:>7}"]
        limit = ("any connection error or more than "
                 f"{DEFAULT_MAX_ERROR_RATE:.0%} errors" if self.max_error_rate is None
                 else f"more than {self.max_error_rate:.2%} errors")
        verdict = self.verdict
        lines += ["", f"  FAIL: {verdict} (fails on {limit})" if verdict else
                  f"  PASS: {self.error_rate:.2%} of {self.attempts} requests failed "
                  f"(fails on {limit})"]
        if self.dashboard:
            lines += ["", f"  dashboard: {self.dashboard}  (Prometheus: {self.dashboard}metrics)"]
        return "\n".join(lines)

    def live_line(self) -> str:
        """One line for a live display at ``seconds`` into the run: the current rate (over the
        last second or so) beside the cumulative one."""
        now, requests = self.seconds, self.requests
        if not self._marks:
            self._marks.append((0.0, 0))  # the start of the run
        self._marks.append((now, requests))
        while len(self._marks) > 2 and now - self._marks[1][0] >= 1.0:
            self._marks.popleft()  # keep the newest mark at least a second old
        then, before = self._marks[0]
        current = (requests - before) / (now - then) if now > then else 0.0
        overall = requests / now if now > 0 else 0.0
        return (f"{now:.1f} s  {requests} requests  {current:.1f} req/s now, "
                f"{overall:.1f} req/s overall  submitted {self.submitted}  finished "
                f"{self.finished}  errors {sum(self.errors.values())}")


class _Time:
    """Real time, or a fake clock that autojumps: it moves to the earliest wake-up only when
    every simulated client is waiting (trio's ``MockClock(autojump)`` idea) — asleep, or in a
    request the server holds on the same clock (a timeout fault, a synchronous wait): each
    live client then has exactly one waiter on the clock."""

    def __init__(self, clock: Clock | None, clients: int) -> None:
        self.clock = clock
        self.alive = clients

    def now(self) -> float:
        return time.monotonic() if self.clock is None else self.clock.now()

    async def sleep(self, seconds: float) -> None:
        clock = self.clock
        if clock is None:
            await asyncio.sleep(seconds)
            return
        target = clock.now() + seconds
        if not isinstance(clock, FakeClock):
            await clock.sleep_until(target)
            return
        waiter = asyncio.ensure_future(clock.sleep_until(target))
        await asyncio.sleep(0)  # registered
        self._jump()
        await waiter

    def finished(self) -> None:
        self.alive -= 1
        self._jump()

    def _jump(self) -> None:
        clock = self.clock
        if isinstance(clock, FakeClock) and self.alive and clock.pending >= self.alive:
            deadline = clock.next_deadline()
            if deadline is not None:
                clock.set(max(deadline, clock.now()))

    async def watch(self) -> None:
        """Jump when the last client to wait is one the server holds (no sleep of a client
        comes after it to trigger :meth:`_jump`): looked at every real millisecond."""
        if not isinstance(self.clock, FakeClock):
            return
        while self.alive:
            await asyncio.sleep(0.001)
            self._jump()


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if len(ordered) < 2:
        only = ordered[0] if ordered else 0.0
        return {"count": len(ordered), "p50": only, "p90": only, "p99": only}
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"count": len(ordered), "p50": round(cuts[49], 3), "p90": round(cuts[89], 3),
            "p99": round(cuts[98], 3)}


async def run_load(
    provider: str,
    base_url: str,
    *,
    clients: int = 10,
    duration: float = 10.0,
    max_jobs: int | None = None,
    policy: PollPolicy = PollPolicy.RETRY_AFTER,
    poll_interval: float = 1.0,
    api_key: str = "wanmock-load",  # client i uses "<api_key>-<i>"
    allow_remote: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Callable[[LoadReport], None] | None = None,
    clock: Clock | None = None,
    download: bool = True,
    max_error_rate: float | None = None,
) -> LoadReport:
    """Run ``clients`` concurrent submit → poll → download loops until ``duration`` seconds or
    ``max_jobs`` submits; returns the report (``report.ok`` judges it by ``max_error_rate``).

    Time is real unless ``clock`` is given: with the fake's own :class:`FakeClock` (in-process
    tests), a client's wait advances it, so a simulated hour runs in moments. A client that gets
    no answer, or whose submit is refused, waits before trying again (``Retry-After`` if given,
    else :data:`BACKOFF_FIRST` doubling up to :data:`BACKOFF_CAP`). ``download=False`` skips the
    image downloads.
    """
    for name, value in (("clients", clients), ("duration", duration),
                        ("poll_interval", poll_interval)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if provider not in DRIVERS:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(DRIVERS))}")
    if max_jobs is not None and max_jobs < 1:
        raise ValueError(f"max_jobs must be >= 1 (or None: no limit), got {max_jobs!r}")
    timing = _Time(clock, clients)
    monotonic, sleep = timing.now, timing.sleep
    if not allow_remote and transport is None and not is_loopback(base_url):
        raise ValueError(f"{base_url} is not a loopback address; load runs are loopback-only "
                         "unless allow_remote is set")
    report = LoadReport(provider, base_url, clients, max_error_rate=max_error_rate)
    started = monotonic()
    stop_at = started + duration
    budget = [max_jobs if max_jobs is not None else 1 << 62]

    async def pause(seconds: float) -> None:
        """Wait, but never past the end of the run."""
        await sleep(max(0.0, min(seconds, stop_at - monotonic())))

    async def timed(name: str, call: Awaitable[httpx.Response]) -> httpx.Response | None:
        begin = time.perf_counter()
        try:
            response = await call
        except Exception as exc:  # no answer: refused, dropped, timed out (or an in-process
            # app's exception, which a socket would have turned into a dropped connection)
            report.errors[type(exc).__name__] += 1
            report.connection_errors += 1
            return None
        report.latencies[name].append((time.perf_counter() - begin) * 1000)
        if response.status_code >= 400:
            report.errors[f"http-{response.status_code}"] += 1
        return response

    class Client:
        """One simulated user: its own key and connection, and its own back-off state."""

        def __init__(self, driver: Driver) -> None:
            self.driver = driver
            self.failures = 0  # consecutive requests without a usable answer
            self.last_status: httpx.Response | None = None  # the terminal one
            self.job_polls = 0  # polls of the job being followed

        def backoff(self, response: httpx.Response | None) -> float:
            """How long to wait after a failure: Retry-After when asked, else exponential."""
            self.failures += 1
            retry = response.headers.get("retry-after") if response is not None else None
            if retry is not None and policy is not PollPolicy.FIXED:
                try:
                    return float(retry)
                except ValueError:
                    pass
            return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (self.failures - 1)))

        async def run(self) -> None:
            wait = 0.0
            while monotonic() < stop_at and budget[0] > 0:
                if wait:
                    await pause(wait)
                    if monotonic() >= stop_at:
                        break
                budget[0] -= 1
                wait = await self.one_job()

        async def one_job(self) -> float:
            """Submit and follow one job; returns how long to wait before the next submit."""
            driver = self.driver
            submitted = await timed("submit", driver.submit())
            if submitted is None or submitted.status_code >= 400:
                return self.backoff(submitted)
            try:
                job = driver.job_id(submitted)
            except (ValueError, KeyError, TypeError):
                report.errors["bad-submit-body"] += 1
                return self.backoff(None)
            self.failures = 0
            report.submitted += 1
            outcome, self.job_polls = "unfinished", 0
            try:
                outcome = await self.follow(job)
            finally:  # every submitted job gets exactly one outcome, however this ends
                report.outcomes[outcome] += 1
                if outcome != "unfinished":
                    report.finished_polls += self.job_polls
            if outcome == str(Phase.SUCCEEDED):
                await self.fetch_result(job)
            return 0.0

        async def follow(self, job: str) -> str:
            """Poll until a terminal phase (returned) or the end of the run ("unfinished")."""
            driver, interval = self.driver, poll_interval
            while monotonic() < stop_at:
                status = await timed("poll", driver.status(job))
                report.polls += 1
                self.job_polls += 1
                wait = interval
                if status is None:
                    wait = max(interval, self.backoff(None))
                elif status.status_code < 400:
                    self.failures = 0
                    try:
                        phase = driver.phase(status)
                    except ValueError:
                        report.errors["bad-status-body"] += 1
                        phase = None
                    if phase is not None and phase.terminal:
                        self.last_status = status
                        return str(phase)
                elif policy is PollPolicy.RETRY_AFTER:
                    try:
                        wait = float(status.headers.get("retry-after", interval))
                    except ValueError:
                        wait = interval
                if policy is PollPolicy.BACKOFF:
                    interval = min(interval * 2, poll_interval * 8)
                await pause(wait)
            return "unfinished"

        async def fetch_result(self, job: str) -> None:
            """Fetch the result (unless the status carried it), then the first image."""
            driver = self.driver
            result: httpx.Response | None = self.last_status
            for _ in range(0 if driver.urls_in_status else 3):
                result = await timed("result", driver.result(job))
                if result is not None and result.status_code < 400:
                    break
                if monotonic() >= stop_at:
                    return
                await pause(self.backoff(result))
            if result is None or result.status_code >= 400:
                return
            try:
                urls = driver.image_urls(result)
            except (ValueError, KeyError, TypeError):
                report.errors["bad-result-body"] += 1
                return
            for url in urls[:1] if download else ():
                await timed("download", driver.http.get(url))

    async def client(index: int) -> None:
        headers = {"authorization": f"Bearer {api_key}-{index}"}
        try:
            async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30,
                                         headers=headers) as http:
                await Client(DRIVERS[provider](http)).run()
        finally:
            timing.finished()

    async def ticker() -> None:
        while monotonic() < stop_at:
            await asyncio.sleep(0.5)  # progress display: real time on purpose
            report.seconds = monotonic() - started
            if progress is not None:
                progress(report)

    tick = asyncio.create_task(ticker()) if progress is not None else None
    watcher = asyncio.create_task(timing.watch())
    try:
        await asyncio.gather(*(client(i) for i in range(clients)))
    finally:
        watcher.cancel()
        if tick is not None:
            tick.cancel()
        report.seconds = monotonic() - started
    if report.requests and (transport is not None or is_loopback(base_url)):
        report.dashboard = await find_dashboard(base_url, transport)
    return report


async def find_dashboard(base_url: str,
                         transport: httpx.AsyncBaseTransport | None = None) -> str | None:
    """The dashboard URL of the wanmock server at ``base_url`` (``None`` if its admin API does
    not answer as wanmock's: another server, or none)."""
    try:
        async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=5) as http:
            answer = await http.get("/__admin/health")
            body = answer.json()
    except (httpx.HTTPError, ValueError):
        return None
    wanmock = isinstance(body, dict) and (
        body.get("status") == "ok" if answer.status_code == 200
        else str(body.get("error", "")).startswith("admin API"))
    return f"{base_url.rstrip('/')}/__admin/" if wanmock else None
