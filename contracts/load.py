"""``wanmock load``: many simulated clients doing submit → poll → download against a base URL.

Bounded by ``duration`` and ``max_jobs``; loopback-only unless ``allow_remote`` (then the CLI asks
for ``--yes`` after stating the cost, as the smoke mode does). Reports throughput, latency
percentiles per endpoint, poll amplification (polls per finished job), errors by kind, outcomes.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from wanmock.server.clock import Clock, FakeClock
from wanmock.server.vocab import Phase

from .drivers import DRIVERS, Driver

__all__ = ["LoadReport", "PollPolicy", "is_loopback", "run_load"]


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


@dataclass
class LoadReport:
    """What a load run measured."""

    provider: str
    base_url: str
    clients: int
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    submitted: int = 0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (``--json``)."""
        finished = sum(self.outcomes.values())
        return {
            "provider": self.provider, "base_url": self.base_url, "clients": self.clients,
            "seconds": round(self.seconds, 3), "requests": self.requests,
            "throughput_rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "submitted": self.submitted, "finished": finished,
            "poll_amplification": round(self.polls / finished, 2) if finished else None,
            "latency_ms": {name: _percentiles(values) for name, values in
                           sorted(self.latencies.items())},
            "errors": dict(self.errors), "outcomes": dict(self.outcomes),
        }

    def render(self) -> str:
        data = self.summary()
        lines = [f"wanmock load: {data['clients']} clients against {self.provider} at "
                 f"{self.base_url} for {data['seconds']} s",
                 f"  {data['requests']} requests, {data['throughput_rps']} req/s; "
                 f"{data['submitted']} jobs submitted, {data['finished']} finished; "
                 f"poll amplification {data['poll_amplification']} polls/job",
                 f"  {'endpoint':<10} {'count':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"]
        for name, p in data["latency_ms"].items():
            lines.append(f"  {name:<10} {p['count']:>7} {p['p50']:>8.2f} {p['p90']:>8.2f} "
                         f"{p['p99']:>8.2f}")
        lines.append(f"  outcomes: {data['outcomes'] or 'none'}")
        lines.append(f"  errors:   {data['errors'] or 'none'}")
        return "\n".join(lines)


class _Time:
    """Real time, or a fake clock that autojumps: it moves to the earliest wake-up only when
    every simulated client is waiting (trio's ``MockClock(autojump)`` idea)."""

    def __init__(self, clock: Clock | None, clients: int) -> None:
        self.clock = clock
        self.alive = clients
        self.waiting = 0

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
        self.waiting += 1
        try:
            waiter = asyncio.ensure_future(clock.sleep_until(target))
            await asyncio.sleep(0)  # registered
            self._jump()
            await waiter
        finally:
            self.waiting -= 1

    def finished(self) -> None:
        self.alive -= 1
        self._jump()

    def _jump(self) -> None:
        clock = self.clock
        if isinstance(clock, FakeClock) and self.alive and self.waiting >= self.alive:
            deadline = clock.next_deadline()
            if deadline is not None:
                clock.set(max(deadline, clock.now()))


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
) -> LoadReport:
    """Run ``clients`` concurrent submit → poll → download loops until ``duration`` seconds or
    ``max_jobs`` submits; returns the report.

    Time is real unless ``clock`` is given: with the fake's own :class:`FakeClock` (in-process
    tests), a client's wait advances it, so a simulated hour runs in moments.
    """
    timing = _Time(clock, clients)
    monotonic, sleep = timing.now, timing.sleep
    if not allow_remote and transport is None and not is_loopback(base_url):
        raise ValueError(f"{base_url} is not a loopback address; load runs are loopback-only "
                         "unless allow_remote is set")
    report = LoadReport(provider, base_url, clients)
    started = monotonic()
    stop_at = started + duration
    budget = [max_jobs if max_jobs is not None else 1 << 62]
    # Each simulated client is its own user: its own key and its own connection.

    async def timed(name: str, call: Any) -> httpx.Response | None:
        begin = time.perf_counter()
        try:
            response: httpx.Response = await call
        except httpx.HTTPError as exc:
            report.errors[type(exc).__name__] += 1
            return None
        report.latencies[name].append((time.perf_counter() - begin) * 1000)
        if response.status_code >= 400:
            report.errors[f"http-{response.status_code}"] += 1
        return response

    async def client(index: int) -> None:
        headers = {"authorization": f"Bearer {api_key}-{index}"}
        async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30,
                                     headers=headers) as http:
            driver = DRIVERS[provider](http)
            try:
                while monotonic() < stop_at and budget[0] > 0:
                    budget[0] -= 1
                    await one_job(driver)
            finally:
                timing.finished()

    async def one_job(driver: Driver) -> None:
        submitted = await timed("submit", driver.submit())
        if submitted is None or submitted.status_code >= 400:
            return
        report.submitted += 1
        job, interval = driver.job_id(submitted), poll_interval
        while monotonic() < stop_at:
            status = await timed("poll", driver.status(job))
            report.polls += 1
            wait = interval
            if status is not None and status.status_code < 400:
                try:
                    phase = driver.phase(status)
                except ValueError:
                    report.errors["bad-status-body"] += 1
                    phase = None
                if phase is not None and phase.terminal:
                    report.outcomes[str(phase)] += 1
                    if phase is Phase.SUCCEEDED:
                        await download(driver, job, status)
                    return
            elif status is not None and policy is PollPolicy.RETRY_AFTER:
                wait = float(status.headers.get("retry-after", interval))
            if policy is PollPolicy.BACKOFF:
                interval = min(interval * 2, poll_interval * 8)
            await sleep(min(wait, max(0.0, stop_at - monotonic())))
        report.outcomes["unfinished"] += 1

    async def download(driver: Driver, job: str, status: httpx.Response) -> None:
        result: httpx.Response | None = status
        for _ in range(0 if driver.urls_in_status else 3):
            result = await timed("result", driver.result(job))
            if result is not None and result.status_code < 400:
                break
            retry = result.headers.get("retry-after") if result is not None else None
            await sleep(float(retry) if retry else poll_interval)
        if result is None or result.status_code >= 400:
            return
        for url in driver.image_urls(result)[:1]:
            await timed("download", driver.http.get(url))

    async def ticker() -> None:
        while monotonic() < stop_at:
            await asyncio.sleep(0.5)  # progress display: real time on purpose
            report.seconds = monotonic() - started
            if progress is not None:
                progress(report)

    tick = asyncio.create_task(ticker()) if progress is not None else None
    await asyncio.gather(*(client(i) for i in range(clients)))
    if tick is not None:
        tick.cancel()
    report.seconds = monotonic() - started
    return report
