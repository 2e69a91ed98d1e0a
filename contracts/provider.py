"""Provider side: does the server at a base URL honour the contract?

:func:`verify_provider` submits jobs, polls them, fetches results, cancels, and sends bad
requests; every response is checked against ``schemas/`` and every transition against the
provider's state machine. It works on the fake and on a real provider alike: time passes through
``wait`` (``asyncio.sleep`` for a real server, the admin clock for a fake one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from wanmock.server.vocab import Phase

from .drivers import DRIVERS, Driver
from .responses import response_problems

__all__ = ["CheckResult", "Report", "admin_clock_wait", "verify_provider"]

Wait = Callable[[float], Awaitable[None]]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One named check: passed, failed (with what and where), or skipped (with why)."""

    name: str
    outcome: str  # "pass" | "fail" | "skip"
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome != "fail"


@dataclass
class Report:
    """Every check of one run, renderable for people and for CI."""

    provider: str
    base_url: str
    results: list[CheckResult] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def render(self) -> str:
        """A readable pass/fail listing."""
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}
        lines = [f"wanmock contract check: {self.provider} at {self.base_url}"]
        for result in self.results:
            lines.append(f"  {mark[result.outcome]}  {result.name}")
            lines.extend(f"        {line}" for line in result.detail.splitlines() if line)
        passed = sum(r.outcome == "pass" for r in self.results)
        failed = sum(r.outcome == "fail" for r in self.results)
        lines.append(f"{passed} passed, {failed} failed")
        return "\n".join(lines)


def admin_clock_wait(http: httpx.AsyncClient) -> Wait:
    """A ``wait`` that advances a fake-clock wanmock server through its admin API."""

    async def wait(seconds: float) -> None:
        answer = await http.post("/__admin/clock/advance", json={"seconds": seconds})
        answer.raise_for_status()

    return wait


class _Check:
    """Collects the schema problems of the responses seen while one check runs."""

    def __init__(self, report: Report, name: str) -> None:
        self.report, self.name = report, name
        self.problems: list[str] = []

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def done(self, skipped: str = "", *, note: str = "") -> None:
        if skipped:
            self.report.results.append(CheckResult(self.name, "skip", skipped))
        elif self.problems:
            self.report.results.append(CheckResult(self.name, "fail", "\n".join(self.problems)))
        else:
            self.report.results.append(CheckResult(self.name, "pass", note))


async def verify_provider(
    provider: str,
    base_url: str,
    api_key: str,
    *,
    wait: Wait | None = None,
    max_jobs: int = 2,
    poll_interval: float = 5.0,
    deadline: float = 900.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Run every provider-side check; submits at most ``max_jobs`` jobs (each costs money on a
    real provider). ``wait(seconds)`` lets time pass between polls."""
    report = Report(provider, base_url)
    current: list[_Check] = []

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        report.responses.append(response)
        for problem in response_problems(response):
            if current:
                current[-1].fail(str(problem))

    headers = {"authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, transport=transport,
                                 timeout=60, event_hooks={"response": [on_response]}) as http:
        sleep: Wait = wait or asyncio.sleep
        driver = DRIVERS[provider](http)

        def check(name: str) -> _Check:
            current.append(_Check(report, name))
            return current[-1]

        await _auth(check("bad auth is answered in the documented error shape"), driver,
                    base_url, transport)
        await _unknown(check("an unknown id is answered 404 in the documented shape"), driver)
        await _invalid(check("an invalid body is a 4xx naming the field"), driver)
        if max_jobs < 1:
            check("submit, poll to a terminal state, fetch the result").done("max_jobs is 0")
            return report
        await _lifecycle(check("submit, poll to a terminal state, fetch the result"), driver,
                         base_url, sleep, poll_interval, deadline)
        cancel = check("cancel follows the provider's rules")
        if max_jobs < 2:
            cancel.done("needs a second job (max_jobs < 2)")
        else:
            await _cancel(cancel, driver, sleep, poll_interval)
    return report


async def _auth(check: _Check, driver: Driver, base_url: str,
                transport: httpx.AsyncBaseTransport | None) -> None:
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=60,
                                 event_hooks=driver.http.event_hooks) as anonymous:
        answer = await Driver(anonymous, provider=driver.provider, facts=driver.facts).submit()
    if answer.status_code not in (400, 401, 403):
        check.fail(f"submit without a key answered {answer.status_code}, expected 400/401/403")
    check.done()


async def _unknown(check: _Check, driver: Driver) -> None:
    unknown = driver.facts.unknown_id
    answer = await driver.status(unknown)
    if answer.status_code != 404:
        check.fail(f"GET of unknown id {unknown} answered {answer.status_code}, expected 404")
    check.done()


async def _invalid(check: _Check, driver: Driver) -> None:
    body = driver.body_without_prompt()
    answer = await driver.submit(body)
    if not 400 <= answer.status_code < 500:
        check.fail(f"a body without prompt answered {answer.status_code}, expected a 4xx")
    elif "prompt" not in answer.text:
        check.fail(f"the error does not name the field 'prompt': {answer.text[:200]}")
    check.done()


async def _lifecycle(check: _Check, driver: Driver, base_url: str, sleep: Wait,
                     interval: float, deadline: float) -> None:
    submitted = await driver.submit()
    if submitted.status_code not in (200, 202):
        check.fail(f"valid submit answered {submitted.status_code}: {submitted.text[:200]}")
        return check.done()
    try:
        job = driver.job_id(submitted)
    except (ValueError, KeyError) as exc:
        check.fail(f"no job id in the submit answer: {exc}")
        return check.done()
    _urls_consistent(check, driver, base_url, job, submitted.json())
    seen: list[Phase] = []
    waited = 0.0
    started = time.monotonic()
    while waited <= deadline:
        answer = await driver.status(job)
        if answer.status_code != 200:
            check.fail(f"poll answered {answer.status_code}: {answer.text[:200]}")
            return check.done()
        try:
            phase = driver.phase(answer)
        except ValueError as exc:
            check.fail(f"GET {answer.request.url}: {exc}")
            return check.done()
        if seen and phase.rank < seen[-1].rank:
            check.fail(f"status went backwards: {seen[-1]} -> {phase}")
        seen.append(phase)
        if phase.terminal:
            break
        await sleep(interval)
        waited += interval
    else:
        check.fail(f"no terminal state within {deadline:g} s (saw {_runs(seen)})")
        return check.done()
    for _ in range(2):  # terminal states absorb
        try:
            again = driver.phase(await driver.status(job))
        except ValueError as exc:
            check.fail(f"after {seen[-1]}: {exc}")
            continue
        if again is not seen[-1]:
            check.fail(f"terminal state did not absorb: {seen[-1]} then {again}")
    if seen[-1] is Phase.SUCCEEDED:
        await _result(check, driver, job)
    check.done(note=f"phases {_runs(seen)} ({time.monotonic() - started:.1f} s real)")


async def _result(check: _Check, driver: Driver, job: str) -> None:
    result = await driver.result(job)
    urls = driver.image_urls(result)
    if not urls:
        check.fail("a succeeded job has no image URL")
        return
    image = await driver.http.get(urls[0], headers={"authorization": ""})
    if image.status_code != 200 or not image.content.startswith(PNG_MAGIC):
        check.fail(f"image {urls[0][:80]} answered {image.status_code}, "
                   f"{image.headers.get('content-type')}; expected a PNG")


def _urls_consistent(check: _Check, driver: Driver, base_url: str, job: str,
                     body: dict[str, object]) -> None:
    for name, (template, required) in driver.facts.url_fields.items():
        path = template.replace("{id}", job)
        url = body.get(name)
        if url is None:
            if required:
                check.fail(f"submit answer lacks {name}")
            continue
        if urlsplit(str(url)).path != path:
            check.fail(f"{name} is {url}, expected a URL whose path is {path}")


async def _cancel(check: _Check, driver: Driver, sleep: Wait, interval: float) -> None:
    try:
        job = driver.job_id(await driver.submit())
        before = driver.phase(await driver.status(job))
        answer = await driver.cancel(job)
        after = driver.phase(await driver.status(job))
    except (ValueError, KeyError) as exc:
        check.fail(f"cancel flow broke: {exc}")
        return check.done()
    cancelled = driver.cancelled(answer)
    if before is Phase.QUEUED and cancelled and after is not Phase.CANCELLED:
        check.fail(f"cancel said cancelled but the job is {after}")
    wrongly = before not in (Phase.QUEUED, Phase.CANCELLED)
    if cancelled and wrongly and driver.facts.cancel_only_queued:
        check.fail(f"a {before} request was cancelled; only queued ones may be")
    if not cancelled and after is Phase.CANCELLED:
        check.fail("cancel was refused but the job is cancelled")
    if after is Phase.CANCELLED:
        await sleep(interval)
        if driver.phase(await driver.status(job)) is not Phase.CANCELLED:
            check.fail("a cancelled job did not stay cancelled")
    check.done()


def _runs(phases: list[Phase]) -> str:
    runs: list[str] = []
    for phase in phases:
        if not runs or runs[-1] != phase.value:
            runs.append(phase.value)
    return " -> ".join(runs) or "nothing"

