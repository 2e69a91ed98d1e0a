"""check_client's machinery: simulated time that follows the client and leaks nowhere, the
provider check, thresholds, retries told from polls. The verdict catalogue is test_verdicts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
import types
from typing import Any

import anyio
import httpx
import pytest

from wanmock.contracts import simtime
from wanmock.contracts.client import SCENARIOS, Scenario, Thresholds, check_client
from wanmock.examples.reference_clients import GenerationFailed, generate_therouter
from wanmock.server import FakeClock
from wanmock.server.errors import ConfigError

from . import catalogue as c

BY_NAME = {s.name: s for s in SCENARIOS}
QUICK = Scenario("quick", "no queue, a 30 s run",
                 {"lifecycle": {"queue_delay": "fixed(0)", "run_time": "fixed(30)"}})
TIME_FUNCTIONS = ("sleep", "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
                  "perf_counter_ns")


def only(*names: str) -> list[Scenario]:
    return [BY_NAME[n] for n in names]


def test_every_binding_is_the_original_afterwards() -> None:
    originals = {name: getattr(time, name) for name in TIME_FUNCTIONS}
    async_sleep = asyncio.sleep
    import anyio._backends._asyncio as anyio_asyncio

    bound_before = types.ModuleType("bound_before")
    exec("from time import sleep, monotonic", bound_before.__dict__)
    sys.modules["bound_before"] = bound_before
    seen: dict[str, Any] = {}

    def client(base_url: str, api_key: str, prompt: str) -> Any:
        # A module imported while the client runs copies whatever ``time.sleep`` is then.
        late = types.ModuleType("bound_during")
        exec("from time import sleep", late.__dict__)
        sys.modules["bound_during"] = late
        seen["during"] = bound_before.sleep is not originals["sleep"]
        return generate_therouter(base_url, api_key, prompt)

    try:
        report = check_client(client, provider="therouter", scenarios=only("success"))
        assert report.ok, report.render()
        assert seen["during"]  # the copy was routed while the client ran...
        for name, function in originals.items():  # ...and every binding is back
            assert getattr(time, name) is function, name
        assert bound_before.sleep is originals["sleep"]
        assert bound_before.monotonic is originals["monotonic"]
        assert sys.modules["bound_during"].sleep is originals["sleep"]
        assert asyncio.sleep is async_sleep
        assert anyio_asyncio.sleep is async_sleep
    finally:
        sys.modules.pop("bound_before", None)
        sys.modules.pop("bound_during", None)


def test_nothing_leaks_when_anyio_is_first_imported_during_the_check() -> None:
    """The reported bug: anyio binds ``asyncio.sleep`` when its backend is first imported, which
    used to happen while check_client had ``asyncio.sleep`` patched."""
    program = textwrap.dedent("""
        import asyncio, sys, time
        real_sleep, real_async_sleep = time.sleep, asyncio.sleep
        from wanmock.contracts.client import check_client, SCENARIOS
        assert "anyio._backends._asyncio" not in sys.modules
        import anyio, httpx

        async def client(base_url, api_key, prompt):
            async with httpx.AsyncClient(base_url=base_url,
                                         headers={"authorization": "Bearer k"}) as http:
                job = (await http.post("/v1/images/generations", params={"async": "true"},
                       json={"model": "wan/wan2.2-t2i-flash", "prompt": prompt})).json()
                while job["status"] not in ("succeeded", "failed"):
                    await anyio.sleep(5)
                    job = (await http.get(f"/v1/jobs/{job['id']}")).json()
                if job["status"] == "failed":
                    raise RuntimeError("the job failed")
                return job

        for order in (["success", "failure"], ["failure", "success"]):
            report = check_client(client, provider="therouter", real_timeout=20,
                                  scenarios=[s for n in order for s in SCENARIOS if s.name == n])
            print(report.verdicts())
            assert report.ok, report.render()
        import anyio._backends._asyncio as backend
        assert backend.sleep is real_async_sleep, backend.sleep
        assert asyncio.sleep is real_async_sleep and time.sleep is real_sleep
        print("clean")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("clean")


def test_a_monotonic_deadline_runs_on_simulated_time() -> None:
    """A client that gives up after 600 s of ``time.monotonic()`` (or ``time.time()``) gives up
    after 600 simulated seconds: it is not judged "hung"."""

    def client(base_url: str, api_key: str, prompt: str, clock: Any = time.monotonic) -> Any:
        with httpx.Client(base_url=base_url, headers={"authorization": "Bearer k"}) as http:
            job = http.post("/v1/images/generations", params={"async": "true"},
                            json={"model": "wan/wan2.2-t2i-flash", "prompt": prompt}).json()
            started = time.monotonic()
            wall = time.time()
            while time.monotonic() - started < 600:
                time.sleep(10)
                job = http.get(f"/v1/jobs/{job['id']}").json()
                if job["status"] == "succeeded":
                    return job
            raise GenerationFailed(f"gave up after {time.time() - wall:.0f} s")

    result = check_client(client, provider="therouter", scenarios=only("stuck")).results[0]
    assert result.passed, result
    assert result.outcome == "raised GenerationFailed: gave up after 600 s"
    assert result.simulated_seconds == pytest.approx(600)


def test_a_request_parked_on_the_clock_is_released() -> None:
    """TheRouter's sync mode waits on the fake clock; the OpenAI SDK's ``images.generate`` uses
    it. Nobody sleeps, yet the clock moves once the server has nothing else to do."""
    report = check_client(c.sync_mode_openai, provider="therouter", scenarios=[QUICK],
                          real_timeout=10)
    result = report.results[0]
    assert result.outcome == "returned" and result.passed, report.render()
    assert result.simulated_seconds == pytest.approx(30)


def test_concurrent_tasks_see_no_spurious_timeout() -> None:
    """One task sleeps 60 s at a time while another waits (5 s timeout) for answers that take
    2 simulated seconds: time must jump to the answers, never past the timeouts."""
    slow_status = Scenario("slow-answers", "every status answer takes 2 s",
                           {"latency": {"status": "fixed(2)"},
                            "lifecycle": {"queue_delay": "fixed(0)", "run_time": "fixed(40)"}})

    async def client(base_url: str, api_key: str, prompt: str) -> Any:
        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(60)

        async with httpx.AsyncClient(base_url=base_url, timeout=5,
                                     headers={"authorization": "Bearer k"}) as http, \
                anyio.create_task_group() as tasks:
            tasks.start_soon(heartbeat)
            job = (await http.post("/v1/images/generations", params={"async": "true"},
                                   json={"model": "wan/wan2.2-t2i-flash",
                                         "prompt": prompt})).json()
            while job["status"] != "succeeded":
                await anyio.sleep(3)
                job = (await http.get(f"/v1/jobs/{job['id']}")).json()
            image = await http.get(job["unsigned_urls"][0])
            image.raise_for_status()
            tasks.cancel_scope.cancel()
            return image.content

    result = check_client(client, provider="therouter", scenarios=[slow_status]).results[0]
    assert result.outcome == "returned", result
    assert result.passed, result.problems


def test_work_in_threads_is_not_overtaken_by_a_jump() -> None:
    """Threads working for the loop (getaddrinfo, ``asyncio.to_thread``, anyio's workers) take
    real time; the clock must not jump past a timeout while they do."""

    def blocking_call() -> str:
        threading.Event().wait(0.02)  # a real blocking call (a file read, a DNS lookup)
        return "done"

    async def client(base_url: str, api_key: str, prompt: str) -> Any:
        with anyio.fail_after(1):
            await anyio.to_thread.run_sync(blocking_call)
        await asyncio.wait_for(asyncio.to_thread(blocking_call), 1)
        async with httpx.AsyncClient(base_url=base_url, timeout=1,
                                     headers={"authorization": "Bearer k"}) as http:
            job = (await http.post("/v1/images/generations", params={"async": "true"},
                                   json={"model": "wan/wan2.2-t2i-flash",
                                         "prompt": prompt})).json()
            while job["status"] != "succeeded":
                await asyncio.sleep(5)
                job = (await http.get(f"/v1/jobs/{job['id']}")).json()
            return job

    result = check_client(client, provider="therouter", scenarios=[QUICK]).results[0]
    assert result.outcome == "returned" and result.passed, result


def test_an_answer_already_sent_is_read_before_any_timer_fires() -> None:
    """The race behind spurious timeouts: the answer lands in the client's socket just before
    the server goes quiet. The loop must read it rather than jump to its read timeout."""

    class Quiet:
        def quiet(self) -> bool:
            return True

    clock = FakeClock()
    timeline = simtime.Timeline(clock, Quiet(), hang_at=clock.now() + 3600)  # type: ignore[arg-type]
    # The loop's own look found nothing (so it called idle); the answer lands meanwhile.
    answers = [[("answer", 1)]]

    def poll(timeout: float) -> list[Any]:
        return answers.pop(0) if answers else []

    before = clock.now()
    assert timeline.idle(poll, timeout=30) == [("answer", 1)]
    assert clock.now() == before  # no jump to the 30 s timer


def test_an_async_client_that_never_gives_up_is_stopped_as_hung() -> None:
    async def client(base_url: str, api_key: str, prompt: str) -> Any:
        async with httpx.AsyncClient(base_url=base_url,
                                     headers={"authorization": "Bearer k"}) as http:
            job = (await http.post("/v1/images/generations", params={"async": "true"},
                                   json={"model": "wan/wan2.2-t2i-flash",
                                         "prompt": prompt})).json()
            while True:
                await asyncio.sleep(120)
                job = (await http.get(f"/v1/jobs/{job['id']}")).json()

    result = check_client(client, provider="therouter", scenarios=only("stuck"),
                          thresholds=Thresholds(max_give_up=1200)).results[0]
    assert result.outcome == "hung"
    assert result.rules == {"hung", "gave-up-late"}
    assert result.simulated_seconds <= 2400


def test_a_sync_client_sleeping_forever_is_stopped_as_hung() -> None:
    def client(base_url: str, api_key: str, prompt: str) -> Any:
        with httpx.Client(base_url=base_url, headers={"authorization": "Bearer k"}) as http:
            http.post("/v1/images/generations", params={"async": "true"},
                      json={"model": "wan/wan2.2-t2i-flash", "prompt": prompt})
        time.sleep(float("inf"))

    result = check_client(client, provider="therouter", scenarios=only("stuck"),
                          thresholds=Thresholds(max_give_up=600)).results[0]
    assert result.outcome == "hung" and result.simulated_seconds == 1200
    assert result.rules == {"hung"}  # it asked nothing after submitting: not "gave up late"


def test_unknown_provider_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown provider 'runcomfi'; did you mean "
                                          r"'runcomfy'\? valid: dashscope, runcomfy, therouter"):
        check_client(generate_therouter, provider="runcomfi")


def test_a_client_of_another_provider_fails_every_scenario() -> None:
    report = check_client(generate_therouter, provider="runcomfy",
                          scenarios=only("success", "stuck"))
    assert report.verdicts() == {"success": {"provider"}, "stuck": {"provider"}}
    message = str(report.results[0].problems[0])
    assert "no request reached runcomfy; the client called therouter (" in message


def test_thresholds_are_configurable_and_the_report_names_the_one_broken() -> None:
    strict = Thresholds(min_poll_interval=10.0)
    report = check_client(generate_therouter, provider="therouter", scenarios=only("success"),
                          thresholds=strict)
    (problem,) = report.results[0].problems
    assert (problem.rule, problem.threshold, problem.limit) == ("poll-interval",
                                                                "min_poll_interval", 10.0)
    assert "polled 5.000 s apart" in problem.message and "t+5.0 s" in problem.message
    assert "[min_poll_interval = 10 s]" in report.render()
    assert "polls >= 10 s apart" in report.render().splitlines()[0]
    one_second = Scenario("one-second", "a 1 s job",
                          {"lifecycle": {"queue_delay": "fixed(0)", "run_time": "fixed(1)"}})
    lenient = check_client(c.no_backoff, provider="therouter", scenarios=[one_second],
                           thresholds=Thresholds(min_poll_interval=0.005))
    assert lenient.ok, lenient.render()


def test_thresholds_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="min_poll_interval must be >= 0"):
        Thresholds(min_poll_interval=-1)
    with pytest.raises(ValueError, match=r"min_give_up .* is later than max_give_up"):
        Thresholds(min_give_up=600, max_give_up=300)


def test_library_retries_count_as_retries_not_polls() -> None:
    report = check_client(c.hammers_after_5xx, provider="therouter",
                          scenarios=only("server-errors"))
    result = report.results[0]
    assert result.retries == 3  # urllib3's, after the 503, 502 and 500
    assert result.requests == 1 + result.polls + result.retries
    assert f"({result.polls} polls, 3 retries)" in report.render()


def test_scenarios_get_distinct_seeds_whatever_their_order() -> None:
    names = ("success", "failure", "moderation")
    forward = check_client(generate_therouter, provider="therouter", scenarios=only(*names))
    backward = check_client(generate_therouter, provider="therouter",
                            scenarios=only(*reversed(names)))
    ids = {r.scenario.name: r.job_ids for r in forward.results}
    assert len({i for job_ids in ids.values() for i in job_ids}) == 3
    assert ids == {r.scenario.name: r.job_ids for r in backward.results}


def test_a_client_left_running_cannot_reach_the_next_scenario() -> None:
    """A client still running when its scenario's real-time bound ran out (stuck on something
    not simulated) must not pollute the next scenario's journal."""
    released, stale_done = threading.Event(), threading.Event()
    urls: list[str] = []

    def client(base_url: str, api_key: str, prompt: str) -> Any:
        urls.append(base_url)
        if len(urls) == 1:  # the first scenario: blocked on a real wait, then it submits
            released.wait(30)
            with httpx.Client(base_url=base_url, headers={"authorization": "Bearer k"}) as http:
                for _ in range(10):
                    http.post("/v1/images/generations", params={"async": "true"},
                              json={"model": "wan/wan2.2-t2i-flash", "prompt": prompt})
            stale_done.set()
            return None
        released.set()  # the second: let the first one loose, then behave
        stale_done.wait(30)
        return generate_therouter(base_url, api_key, prompt)

    report = check_client(client, provider="therouter", scenarios=only("stuck", "success"),
                          real_timeout=1.5)
    first, second = report.results
    assert first.outcome.startswith("hung (no answer within 1.5 s real time")
    assert second.passed, report.render()
    assert len(second.job_ids) == 1 and urls[0] != urls[1]


def test_two_checks_at_once_in_two_threads() -> None:
    """Routing is per thread and the wrappers are reference-counted: two concurrent checks
    each see their own clock, and the originals are back once both are done."""
    reports: dict[str, Any] = {}

    def run(name: str) -> None:
        reports[name] = check_client(generate_therouter, provider="therouter",
                                     scenarios=only(name))

    threads = [threading.Thread(target=run, args=(n,)) for n in ("success", "failure")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert reports["success"].ok and reports["failure"].ok
    assert time.sleep is simtime._REAL["sleep"]


def _cancels_after(seconds: float) -> Any:
    """A TheRouter client that polls every 5 s and, past ``seconds``, cancels and raises."""

    def generate(base_url: str, api_key: str, prompt: str) -> Any:
        with httpx.Client(base_url=base_url,
                          headers={"authorization": f"Bearer {api_key}"}) as client:
            job = client.post("/v1/images/generations", params={"async": "true"},
                              json={"model": c.MODEL, "prompt": prompt}).json()["id"]
            started = time.monotonic()
            while True:
                body = client.get(f"/v1/jobs/{job}").json()
                if body["status"] == "succeeded":
                    return body["unsigned_urls"]
                if body["status"] in c.TR_FAILED:
                    raise GenerationFailed(body["status"])
                if time.monotonic() - started > seconds:
                    client.post(f"/v1/jobs/{job}/cancel")
                    raise TimeoutError(f"gave up after {seconds:g} s")
                time.sleep(5)

    return generate


def test_cancelling_an_unfinished_job_early_is_giving_up_early() -> None:
    # known bad: cancelling at t+20 s leaves a terminal job, but the client gave up on it
    report = check_client(_cancels_after(20), provider="therouter", scenarios=only("stuck"))
    assert report.verdicts() == {"stuck": {"gave-up-early"}}, report.render()
    (problem,) = report.results[0].problems
    assert "cancelled job" in problem.message and "t+25.0 s" in problem.message
    # known good: cancelling once the job had its documented 180 s
    patient = check_client(_cancels_after(200), provider="therouter", scenarios=only("stuck"))
    assert patient.ok, patient.render()
