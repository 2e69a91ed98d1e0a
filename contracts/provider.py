"""Provider side: does the server at a base URL honour the contract?

:func:`verify_provider` submits jobs, polls them, fetches results, cancels, and sends bad
requests; every response is checked against ``schemas/`` and every transition against the
provider's state machine. It works on the fake and on a real provider alike: time passes through
``wait`` (``asyncio.sleep`` for a real server, the admin clock for a fake one).

It reports, it never crashes: an unreachable server, a bad URL, a body that is not JSON or lacks
a field, an admin API that refuses — each becomes a FAIL line saying why. Like a polite client it
waits out 429 and 503 answers (``Retry-After``) a few times before judging, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from wanmock.server.dialects import DialectRegistry, default_registry
from wanmock.server.scenarios import HEADER as SCENARIO_HEADER
from wanmock.server.vocab import Phase

from .drivers import DRIVERS, Driver, drivers
from .responses import response_problems

__all__ = ["CheckResult", "Report", "admin_clock_wait", "clock_mode_problem", "verify_provider"]

Wait = Callable[[float], Awaitable[None]]
Progress = Callable[[str], None]
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
    #: Requests sent again after a 429/503 (or a 502/504 to a GET), by answer status.
    retries: Counter[int] = field(default_factory=Counter)
    #: Seconds waited before those retries (simulated on a fake clock).
    retry_wait: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def render(self) -> str:
        """A readable pass/fail listing."""
        lines = [f"wanmock contract check: {self.provider} at {self.base_url}"]
        for result in self.results:
            lines.append(f"  {result.outcome.upper()}  {result.name}")
            lines.extend(f"        {line}" for line in result.detail.splitlines() if line)
        passed = sum(r.outcome == "pass" for r in self.results)
        failed = sum(r.outcome == "fail" for r in self.results)
        summary = f"{passed} passed, {failed} failed"
        if self.retries:
            summary += f"; {_retry_text(self.retries, self.retry_wait)}"
        lines.append(summary)
        return "\n".join(lines)


class _Stop(RuntimeError):
    """A check cannot go on; the message says why in a sentence."""


def admin_clock_wait(http: httpx.AsyncClient) -> Wait:
    """A ``wait`` that advances a fake-clock wanmock server through its admin API.

    Raises :class:`RuntimeError` with the server's reason when the admin API refuses (a 409 from
    a real-clock server, a 401/403 without the admin token)."""

    async def wait(seconds: float) -> None:
        answer = await http.post("/__admin/clock/advance", json={"seconds": seconds})
        if answer.status_code != 200:
            raise _Stop(f"advancing the server's clock failed: POST /__admin/clock/advance "
                        f"answered {answer.status_code}: {_reason(answer)}")

    return wait


async def clock_mode_problem(
    base_url: str,
    *,
    fake_clock: bool,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str | None:
    """Why checking ``base_url`` with (or without) a fake clock cannot work, else ``None``.

    Reads ``GET /__admin/clock``. A wanmock server on a fake clock moves only when advanced, so
    without ``fake_clock`` its jobs never finish; a real-clock server refuses to be advanced. A
    server without the admin API (a real provider) is fine without ``fake_clock``. An
    unreachable server is not judged here: the checks report it.
    """
    try:
        async with httpx.AsyncClient(base_url=base_url, transport=transport,
                                     timeout=10) as http:
            answer = await http.get("/__admin/clock")
    except (httpx.HTTPError, httpx.InvalidURL):
        return None
    try:
        data = answer.json() if answer.status_code == 200 else None
    except ValueError:
        data = None
    fake = data.get("fake") if isinstance(data, dict) else None
    if not isinstance(fake, bool):
        if not fake_clock:
            return None
        return (f"--fake-clock needs a wanmock server to advance, but GET {base_url}/__admin/"
                f"clock answered {answer.status_code} ({_reason(answer)}); drop --fake-clock "
                "to check a server on a real clock")
    if fake and not fake_clock:
        return (f"the server at {base_url} runs a fake clock that moves only when advanced, so "
                "its jobs would never finish while verify waits in real time; add --fake-clock")
    if not fake and fake_clock:
        return (f"the server at {base_url} runs a real clock and cannot be advanced; drop "
                "--fake-clock (a wanmock server started with --time-scale 1000 finishes jobs "
                "in moments)")
    return None


class _Check:
    """Collects the schema problems of the responses seen while one check runs."""

    def __init__(self, report: Report, name: str, say: Progress, retention: float) -> None:
        self.report, self.name, self.say = report, name, say
        self.retention = retention  # the provider's documented one, to judge answers by
        self.problems: list[str] = []
        self.retries: Counter[int] = Counter()
        self.retry_wait = 0.0
        self.doing = "starting"  # what a time-out interrupted
        self.finished = False
        self.say(f"....  {name}")

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def done(self, skipped: str = "", *, note: str = "") -> None:
        if self.finished:
            return
        self.finished = True
        lines = [*self.problems] if self.problems else [note] if note and not skipped else []
        if self.retries:
            lines.append(_retry_text(self.retries, self.retry_wait))
        if skipped:
            result = CheckResult(self.name, "skip", skipped)
        elif self.problems:
            result = CheckResult(self.name, "fail", "\n".join(lines))
        else:
            result = CheckResult(self.name, "pass", "\n".join(line for line in lines if line))
        self.report.results.append(result)
        self.say(f"{result.outcome.upper()}  {self.name}")


class _PoliteClient(httpx.AsyncClient):
    """Waits out 429 and 503 (and, for a GET, 502 and 504) like a polite client would.

    ``Retry-After`` (seconds or an HTTP date) is honoured through ``wait`` — on a fake clock that
    advances simulated time. At most ``attempts`` retries, each at most ``longest`` seconds;
    past that the answer is returned for the check to judge. A POST is retried only when the
    server said it did nothing (429/503): a submit costs money on a real provider.
    """

    RETRY_ANY = frozenset({429, 503})
    RETRY_GET = frozenset({429, 502, 503, 504})

    def __init__(self, *, wait: Wait, attempts: int, longest: float,
                 on_retry: Callable[[int, float], None], **kw: Any) -> None:
        super().__init__(**kw)
        self._wait, self._attempts, self._longest = wait, attempts, longest
        self._on_retry = on_retry

    async def send(self, request: httpx.Request, **kw: Any) -> httpx.Response:
        retryable = self.RETRY_GET if request.method == "GET" else self.RETRY_ANY
        for attempt in range(self._attempts + 1):
            response = await super().send(request, **kw)
            if response.status_code not in retryable or attempt == self._attempts:
                return response
            delay = _retry_after(response, default=2.0 ** attempt)
            if delay > self._longest:
                return response
            await response.aclose()
            self._on_retry(response.status_code, delay)
            await self._wait(delay)
        raise AssertionError("unreachable")  # pragma: no cover


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
    progress: Progress | None = None,
    timeout: float | None = None,
    retries: int = 3,
    longest_retry_wait: float = 120.0,
    registry: DialectRegistry | None = None,
) -> Report:
    """Run every provider-side check; submits at most ``max_jobs`` jobs (each costs money on a
    real provider). ``wait(seconds)`` lets time pass between polls.

    ``progress(line)`` hears each check start and end and every poll as it happens.
    ``timeout`` bounds the whole run in real seconds: the check running then fails saying so,
    the rest are skipped. 429/503 answers are retried up to ``retries`` times, each wait (the
    ``Retry-After``) at most ``longest_retry_wait`` seconds. Transport and protocol errors
    become failed checks with the reason; this function does not raise for them.
    ``registry`` holds the providers to know (the built-in ones by default).

    >>> report = await verify_provider("therouter", url, key, wait=wait)  # doctest: +SKIP
    """
    known = DRIVERS if registry is None else drivers(registry)
    if provider not in known:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(known))}")
    dialect = (registry or default_registry()).get(provider)
    # The provider's documented rules (default options): may a queued job be cancelled?
    documented = dialect(dialect.Options())
    cancels_queued = Phase.QUEUED in documented.cancellable
    report = Report(provider, base_url)
    say: Progress = progress or (lambda line: None)
    sleep: Wait = wait or asyncio.sleep
    current: list[_Check] = []

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        report.responses.append(response)
        for problem in response_problems(response, registry=registry):
            if current:
                current[-1].fail(str(problem))

    def on_retry(status: int, delay: float) -> None:
        report.retries[status] += 1
        report.retry_wait += delay
        if current:
            current[-1].retries[status] += 1
            current[-1].retry_wait += delay
        say(f"        answered {status}; retrying in {delay:g} s")

    def polite(**kw: Any) -> httpx.AsyncClient:
        return _PoliteClient(base_url=base_url, transport=transport, timeout=60,
                             event_hooks={"response": [on_response]}, wait=sleep,
                             attempts=retries, longest=longest_retry_wait, on_retry=on_retry,
                             **kw)

    steps: list[tuple[str, Callable[[_Check, Driver], Awaitable[None]]]] = [
        ("bad auth is answered in the documented error shape",
         lambda check, driver: _auth(check, driver, polite)),
        ("an unknown id is answered 404 in the documented shape", _unknown),
        ("an invalid body is a 4xx naming the field", _invalid),
        ("submit, poll to a terminal state, fetch the result",
         lambda check, driver: _lifecycle(check, driver, base_url, sleep, poll_interval,
                                          deadline)),
        ("cancel follows the provider's rules",
         lambda check, driver: _cancel(check, driver, sleep, poll_interval, cancels_queued)),
    ]
    budget = {steps[3][0]: (1, "max_jobs is 0"),
              steps[4][0]: (2, "needs a second job (max_jobs < 2)")}
    unreachable = ""
    try:
        async with asyncio.timeout(timeout), \
                polite(headers={"authorization": f"Bearer {api_key}"}) as http:
            driver = known[provider](http)
            for name, step in steps:
                needs, why = budget.get(name, (0, ""))
                if unreachable or max_jobs < needs:
                    report.results.append(CheckResult(name, "skip", unreachable or why))
                    say(f"SKIP  {name}")
                    continue
                check = _Check(report, name, say, documented.retention)
                current.append(check)
                try:
                    await step(check, driver)
                except Exception as exc:  # every error is a verdict, never a crash
                    if _is_unreachable(exc):
                        check.fail(_describe(exc, base_url))
                        unreachable = "not run: the server could not be reached (see above)"
                    else:
                        check.fail(f"{_describe(exc, base_url)} (while {check.doing})")
                check.done()
    except TimeoutError:
        running = current[-1] if current and not current[-1].finished else None
        if running is not None:
            running.fail(f"timed out: the whole run may take {timeout:g} s of real time "
                         f"(timeout) and ran out while {running.doing}")
            running.done()
        done = {r.name for r in report.results}
        report.results.extend(CheckResult(name, "skip", "not run: the timeout ran out")
                              for name, _ in steps if name not in done)
    except httpx.InvalidURL as exc:  # raised while building the client
        report.results.extend(
            CheckResult(name, "fail" if i == 0 else "skip",
                        _describe(exc, base_url) if i == 0 else
                        "not run: the server could not be reached (see above)")
            for i, (name, _) in enumerate(steps))
    return report


def _retry_after(response: httpx.Response, *, default: float) -> float:
    """Seconds to wait per ``Retry-After`` (delta-seconds or an HTTP date), else ``default``."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _retry_text(retries: Counter[int], waited: float) -> str:
    count = sum(retries.values())
    kinds = ", ".join(f"{status} x{n}" for status, n in sorted(retries.items()))
    return (f"retried {count} request{'s' if count > 1 else ''} answered {kinds} (waited "
            f"{waited:g} s in all, honouring Retry-After)")


def _reason(answer: httpx.Response) -> str:
    """The error message in an answer's body, or the start of the body."""
    try:
        data = answer.json()
    except ValueError:
        return answer.text[:200] or "empty body"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for key in ("error", "error_message", "detail", "message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return answer.text[:200]


def _is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol | httpx.InvalidURL)


def _describe(exc: BaseException, base_url: str) -> str:
    """One sentence for a failed check: what broke, where, and what to look at."""
    if isinstance(exc, _Stop):
        return str(exc)
    request = getattr(exc, "_request", None)
    where = f"{request.method} {request.url}: " if request is not None else ""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        hint = "" if "://" in base_url else f"; write it with a scheme: 'http://{base_url}'"
        return f"bad base URL {base_url!r}: {str(exc).rstrip('.')}{hint}"
    if isinstance(exc, httpx.ConnectError):
        refused = any(isinstance(e, ConnectionRefusedError) for e in _chain(exc))
        why = "connection refused" if refused else str(exc)
        return f"cannot connect to {base_url}: {why}; is the server running at --base-url?"
    if isinstance(exc, httpx.TimeoutException):
        return f"{where}no answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPError):
        return f"{where}the connection broke: {type(exc).__name__}: {exc}"
    if isinstance(exc, KeyError):
        return f"an answer lacks the field {exc.args[0]!r}"
    if isinstance(exc, ValueError):  # json.JSONDecodeError included
        return f"an answer could not be read: {exc}"
    return f"unexpected {type(exc).__name__}: {exc}"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


async def _auth(check: _Check, driver: Driver,
                polite: Callable[..., httpx.AsyncClient]) -> None:
    check.doing = "submitting without a key"
    async with polite() as anonymous:
        answer = await Driver(anonymous, provider=driver.provider,
                              facts=driver.facts).submit()
    if answer.status_code not in (400, 401, 403):
        check.fail(f"submit without a key answered {answer.status_code}, expected 400/401/403")
    check.done()


async def _unknown(check: _Check, driver: Driver) -> None:
    unknown = driver.facts.unknown_id
    check.doing = f"asking for the unknown id {unknown}"
    answer = await driver.status(unknown)
    if answer.status_code != 404:
        check.fail(f"GET of unknown id {unknown} answered {answer.status_code}, expected 404")
    check.done()


async def _invalid(check: _Check, driver: Driver) -> None:
    body = driver.body_without_prompt()
    check.doing = "submitting a body without prompt"
    answer = await driver.submit(body)
    if not 400 <= answer.status_code < 500:
        check.fail(f"a body without prompt answered {answer.status_code}, expected a 4xx")
    elif "prompt" not in answer.text:
        check.fail(f"the error does not name the field 'prompt': {answer.text[:200]}")
    check.done()


async def _lifecycle(check: _Check, driver: Driver, base_url: str, sleep: Wait,
                     interval: float, deadline: float) -> None:
    check.doing = "submitting a job"
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
        check.doing = f"polling job {job} (poll {len(seen) + 1}, {waited:g} s waited)"
        answer = await driver.status(job)
        if answer.status_code != 200:
            check.fail(f"poll answered {answer.status_code}: {answer.text[:200]}")
            return check.done()
        _judge(check, driver, answer, job)
        try:
            phase = driver.phase(answer)
        except ValueError as exc:
            check.fail(f"GET {answer.request.url}: {exc}")
            return check.done()
        if seen and phase.rank < seen[-1].rank:
            check.fail(f"status went backwards: {seen[-1]} -> {phase}")
        seen.append(phase)
        check.say(f"        poll {len(seen)}: {phase} after {waited:g} s")
        if phase.terminal:
            break
        check.doing = (f"waiting {interval:g} s to poll job {job} again (poll {len(seen)} saw "
                       f"{phase}, {waited:g} s waited)")
        await sleep(interval)
        waited += interval
    else:
        check.fail(f"no terminal state within {deadline:g} s (saw {_runs(seen)})")
        return check.done()
    check.doing = f"re-reading the {seen[-1]} job {job}"
    for _ in range(2):  # terminal states absorb
        try:
            again = driver.phase(await _status(check, driver, job))
        except ValueError as exc:
            check.fail(f"after {seen[-1]}: {exc}")
            continue
        if again is not seen[-1]:
            check.fail(f"terminal state did not absorb: {seen[-1]} then {again}")
    if seen[-1] is Phase.SUCCEEDED:
        await _result(check, driver, job)
    check.doing = f"reading job {job} without a key"
    await _keyless_read(check, driver, job)
    check.done(note=f"phases {_runs(seen)} ({time.monotonic() - started:.1f} s real)")


async def _result(check: _Check, driver: Driver, job: str) -> None:
    check.doing = f"fetching the result of {job}"
    result = await driver.result(job)
    if result.status_code != 200:
        check.fail(f"GET {result.request.url} of a succeeded job answered "
                   f"{result.status_code}: {_reason(result)}")
        return
    _judge(check, driver, result, job)
    try:
        urls = driver.image_urls(result)
    except (ValueError, KeyError, TypeError) as exc:
        missing = f"lacks {exc.args[0]!r}" if isinstance(exc, KeyError) else f"is unreadable: {exc}"
        check.fail(f"the result of a succeeded job (GET {result.request.url}) {missing}")
        return
    if not urls:
        check.fail("a succeeded job has no image URL")
        return
    check.doing = f"downloading {urls[0][:80]}"
    image = await driver.http.get(urls[0], headers={"authorization": ""})
    if image.status_code != 200 or not image.content.startswith(PNG_MAGIC):
        check.fail(f"image {urls[0][:80]} answered {image.status_code}, "
                   f"{image.headers.get('content-type')}; expected a PNG")


async def _keyless_read(check: _Check, driver: Driver, job: str) -> None:
    """A job is its owner's: a status read without a key must be refused as a submit without
    one is (the provider's auth error), never answered.

    A 5xx or a 429 says nothing either way (a flaky server, a rate limit) and is not judged."""
    answer = await driver.status_without_key(job)
    status = answer.status_code
    if status < 400 or (status < 500 and status not in (400, 401, 403, 429)):
        leak = ": anyone could read any job" if status < 300 else ""
        check.fail(f"{answer.request.method} {answer.request.url.path} without an "
                   f"Authorization header answered {status}; expected the provider's auth "
                   f"error (401), as for a submit without a key{leak}")


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


async def _cancel(check: _Check, driver: Driver, sleep: Wait, interval: float,
                  cancels_queued: bool) -> None:
    try:
        check.doing = "submitting a job to cancel"
        # Asks a wanmock server to keep the job queued, so the cancel below meets a job the
        # provider's rules let be cancelled; a real provider ignores the header.
        submitted = await driver.submit(headers={SCENARIO_HEADER: "stuck"})
        if submitted.status_code not in (200, 202):
            check.fail(f"valid submit answered {submitted.status_code}: {_reason(submitted)}")
            return check.done()
        job = driver.job_id(submitted)
        before = driver.phase(await _status(check, driver, job))
        check.doing = f"cancelling {job}"
        answer = await driver.cancel(job)
        after = driver.phase(await _status(check, driver, job))
        body = answer.json() if answer.status_code < 300 else {}
        if not isinstance(body, dict):
            raise ValueError(f"the cancel answer is not a JSON object: {answer.text[:120]!r}")
    except (ValueError, KeyError) as exc:
        check.fail(f"cancel flow broke: {_describe(exc, '')}")
        return check.done()
    cancelled = driver.cancelled(answer)
    if before is Phase.QUEUED and cancels_queued:
        _queued_cancel(check, answer, cancelled, after)
    elif before is Phase.QUEUED and cancelled and after is not Phase.CANCELLED:
        check.fail(f"cancel said cancelled but the job is {after}")
    wrongly = before not in (Phase.QUEUED, Phase.CANCELLED)
    if cancelled and wrongly and driver.facts.cancel_only_queued:
        check.fail(f"a {before} request was cancelled; only queued ones may be")
    if not cancelled and after is Phase.CANCELLED:
        check.fail("cancel was refused but the job is cancelled")
    if after is Phase.CANCELLED:
        await sleep(interval)
        if driver.phase(await _status(check, driver, job)) is not Phase.CANCELLED:
            check.fail("a cancelled job did not stay cancelled")
    check.done()


def _queued_cancel(check: _Check, answer: httpx.Response, cancelled: bool,
                   after: Phase) -> None:
    """Judge the cancel of a job read as queued just before: the provider cancels queued jobs,
    so the cancel must succeed and the job then read as cancelled.

    A refusal is judged only while the job still reads queued afterwards: on a real clock it may
    have started between the two requests, and a running job may be refused."""
    where = f"{answer.request.method} {answer.request.url.path}"
    if not cancelled and after is Phase.QUEUED:
        check.fail(f"{where} of a queued job answered {answer.status_code} "
                   f"({_reason(answer)}) and the job is still queued; expected it cancelled "
                   "(the provider's rules let a queued job be cancelled)")
    elif cancelled and after is not Phase.CANCELLED:
        check.fail(f"{where} of a queued job said cancelled, but the job then reads {after}; "
                   "expected cancelled")


async def _status(check: _Check, driver: Driver, job: str) -> httpx.Response:
    """The status answer for ``job``, judged (:func:`_judge`) when it is a 200."""
    answer = await driver.status(job)
    if answer.status_code == 200:
        _judge(check, driver, answer, job)
    return answer


def _judge(check: _Check, driver: Driver, answer: httpx.Response, job: str) -> None:
    """What a schema cannot see in a 200 status or result answer: it must be about the job
    asked for, and agree with itself (times in order, the documented retention, counts; the
    provider's ``answer_problems``). Each problem is said once per check, however many answers
    repeat it."""
    where = f"{answer.request.method} {answer.request.url.path}"
    try:
        named = driver.facts.job_id(answer.json())
    except (ValueError, KeyError, TypeError, IndexError):
        named = None  # a missing or unreadable id is the schema's to report
    problems = []
    if named is not None and named != job:
        problems.append(f"{where} answered about job {named[:80]!r}, not the job asked for "
                        f"({job}); expected {'.'.join(driver.facts.id_field)} = {job}")
    with contextlib.suppress(ValueError):  # not JSON: the schema check says so
        problems += [f"{where}: {problem}" for problem in driver.facts.answer_problems(
            answer.json(), check.retention)]
    for problem in problems:
        if problem not in check.problems:
            check.fail(problem)


def _runs(phases: list[Phase]) -> str:
    runs: list[str] = []
    for phase in phases:
        if not runs or runs[-1] != phase.value:
            runs.append(phase.value)
    return " -> ".join(runs) or "nothing"

