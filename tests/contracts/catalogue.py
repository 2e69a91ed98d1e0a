"""Known-good and known-bad clients for ``check_client``, written the way users write them.

Each is a plain ``generate(base_url, api_key, prompt)`` (sync or ``async def``) on a real HTTP
stack — ``requests`` (+ ``tenacity``, urllib3's ``Retry``), ``httpx`` sync and async, anyio, the
official ``openai`` and ``dashscope`` SDKs — sleeping with ``time.sleep`` / ``asyncio.sleep``
/ ``anyio.sleep`` and measuring time with ``time.monotonic`` or the event loop, as real code
does. None takes a ``sleep`` seam: check_client must simulate time for them as they are.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import dashscope
import httpx
import openai
import requests
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from wanmock.examples.reference_clients import GenerationFailed

MODEL = "wan/wan2.2-t2i-flash"
TR_SUBMIT = "/v1/images/generations"
RC_SUBMIT = "/v1/models/wan-ai/wan-2-2/flash/text-to-image"
TR_FAILED = ("failed", "cancelled", "expired")
RC_FAILED = ("failed", "cancelled")


def _auth(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"}


# Known-good clients ---------------------------------------------------------------------------


class Retryable(Exception):
    """An answer worth trying again (429, 5xx), with the server's Retry-After if it gave one."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.retry_after = retry_after


def _wait_politely(state: tenacity.RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, Retryable) and error.retry_after is not None:
        return error.retry_after
    return float(tenacity.wait_exponential(multiplier=1, min=1, max=30)(state))


def requests_tenacity_runcomfy(base_url: str, api_key: str, prompt: str) -> Any:
    """GOOD. requests + tenacity: Retry-After honoured, exponential back-off from 1 s, a
    600 s deadline on ``time.monotonic()``."""
    session = requests.Session()
    session.headers.update(_auth(api_key))

    @tenacity.retry(
        retry=tenacity.retry_if_exception_type(
            (Retryable, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
             ValueError)),
        wait=_wait_politely, stop=tenacity.stop_after_attempt(8), reraise=True)
    def call(method: str, path: str, **kw: Any) -> Any:
        answer = session.request(method, base_url + path, timeout=30, **kw)
        if answer.status_code == 429 or answer.status_code >= 500:
            after = answer.headers.get("retry-after")
            raise Retryable(answer.status_code, float(after) if after else None)
        answer.raise_for_status()
        return answer.json()

    with session:
        request_id = call("POST", RC_SUBMIT, json={"prompt": prompt})["request_id"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = call("GET", f"/v1/requests/{request_id}/status")["status"]
            if status == "completed":
                return call("GET", f"/v1/requests/{request_id}/result")["output"]
            if status in RC_FAILED:
                raise GenerationFailed(f"request {request_id} ended {status}")
            time.sleep(5)
    raise GenerationFailed(f"request {request_id} unfinished after 600 s")


async def async_openai_therouter(base_url: str, api_key: str, prompt: str) -> Any:
    """GOOD. The official AsyncOpenAI client (its own retries: Retry-After honoured, 0.5 s
    exponential back-off) submits with ``?async=true`` and polls; errors the SDK gives up on
    are waited out; the deadline is on the event loop's clock."""
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=api_key)
    async with client:
        raw = await client.images.with_raw_response.generate(
            model=MODEL, prompt=prompt, extra_query={"async": "true"})
        job_id = raw.http_response.json()["id"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 600
        while loop.time() < deadline:
            await asyncio.sleep(5)
            try:
                job: Any = await client.get(f"/jobs/{job_id}", cast_to=object)
            except openai.APIStatusError as error:
                await asyncio.sleep(float(error.response.headers.get("retry-after", 10)))
                continue
            except (openai.APIConnectionError, ValueError):
                continue  # the SDK retried already; the next poll comes 5 s later
            if job["status"] == "succeeded":
                return job["unsigned_urls"]
            if job["status"] in TR_FAILED:
                raise GenerationFailed(f"job {job_id} ended {job['status']}")
    raise GenerationFailed(f"job {job_id} unfinished after 600 s")


async def httpx_anyio_runcomfy(base_url: str, api_key: str, prompt: str) -> Any:
    """GOOD. httpx.AsyncClient + anyio: per-request timeouts (anyio cancel scopes), Retry-After
    honoured, back-off doubling from 1 s, a deadline on ``time.monotonic()``."""
    async with httpx.AsyncClient(base_url=base_url, headers=_auth(api_key),
                                 timeout=30) as http:

        async def call(method: str, path: str) -> Any:
            delay = 1.0
            for _ in range(8):
                try:
                    answer = await http.request(method, path)
                    if answer.status_code in (429, 503) and "retry-after" in answer.headers:
                        await anyio.sleep(float(answer.headers["retry-after"]))
                        continue
                    if answer.status_code < 500 and answer.status_code != 429:
                        answer.raise_for_status()
                        return answer.json()
                except (httpx.TransportError, ValueError):
                    pass
                await anyio.sleep(delay)
                delay = min(delay * 2, 30)
            raise GenerationFailed(f"{method} {path}: no usable answer")

        answer = await http.post(RC_SUBMIT, json={"prompt": prompt})
        request_id = answer.json()["request_id"]
        started = time.monotonic()
        while time.monotonic() - started < 600:
            status = (await call("GET", f"/v1/requests/{request_id}/status"))["status"]
            if status == "completed":
                return (await call("GET", f"/v1/requests/{request_id}/result"))["output"]
            if status in RC_FAILED:
                raise GenerationFailed(f"request {request_id} ended {status}")
            await anyio.sleep(5)
    raise GenerationFailed(f"request {request_id} unfinished after 600 s")


# Known-bad clients ----------------------------------------------------------------------------


def _therouter_poller(base_url: str, api_key: str, prompt: str, *, interval: float = 5.0,
                      success: str = "succeeded", failures: tuple[str, ...] = TR_FAILED,
                      deadline: float = 600.0, retry_wait: float | None = None) -> Any:
    """A plain httpx TheRouter poller; the knobs make the bad ones below."""
    with httpx.Client(base_url=base_url, headers=_auth(api_key), timeout=30) as http:
        job = http.post(TR_SUBMIT, params={"async": "true"},
                        json={"model": MODEL, "prompt": prompt}).json()
        started = time.monotonic()
        while time.monotonic() - started < deadline:
            answer = http.get(f"/v1/jobs/{job['id']}")
            if answer.status_code in (429, 503) or answer.status_code >= 500:
                after = answer.headers.get("retry-after")
                time.sleep(retry_wait if retry_wait is not None else float(after or 5))
                continue
            job = answer.json()
            if job["status"] == success:
                return job.get("unsigned_urls") or job
            if job["status"] in failures:
                raise GenerationFailed(f"job {job['id']} ended {job['status']}")
            time.sleep(interval)
    raise GenerationFailed(f"job {job['id']} still {job['status']} after {deadline:g} s")


def no_backoff(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (httpx): polls every 10 ms."""
    return _therouter_poller(base_url, api_key, prompt, interval=0.01)


async def ignores_retry_after(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (AsyncOpenAI, SDK retries off): after a 429 it tries again 1 s later, whatever
    Retry-After said."""
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0)
    async with client:
        raw = await client.images.with_raw_response.generate(
            model=MODEL, prompt=prompt, extra_query={"async": "true"})
        job: Any = raw.http_response.json()
        for _ in range(200):
            try:
                job = await client.get(f"/jobs/{job['id']}", cast_to=object)
            except openai.RateLimitError:
                await asyncio.sleep(1)
                continue
            if job["status"] == "succeeded":
                return job["unsigned_urls"]
            if job["status"] in TR_FAILED:
                raise GenerationFailed(job["status"])
            await asyncio.sleep(5)
    raise GenerationFailed("gave up")


def polls_after_terminal(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (requests): asks for the status once more "to log it" after the job ended."""
    with requests.Session() as http:
        http.headers.update(_auth(api_key))
        request_id = http.post(base_url + RC_SUBMIT, json={"prompt": prompt}).json()["request_id"]
        status_url = f"{base_url}/v1/requests/{request_id}/status"
        try:
            while True:
                status = http.get(status_url).json()["status"]
                if status == "completed":
                    return http.get(f"{base_url}/v1/requests/{request_id}/result").json()
                if status in RC_FAILED:
                    raise GenerationFailed(status)
                time.sleep(5)
        finally:
            http.get(status_url)  # "final state for the log"


def treats_failed_as_success(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (requests): any status that is not queued or running counts as done; fetches the
    result and returns it."""
    with requests.Session() as http:
        http.headers.update(_auth(api_key))
        request_id = http.post(base_url + RC_SUBMIT, json={"prompt": prompt}).json()["request_id"]
        while http.get(f"{base_url}/v1/requests/{request_id}/status").json()["status"] in (
                "in_queue", "in_progress"):
            time.sleep(5)
        return http.get(f"{base_url}/v1/requests/{request_id}/result").json()


def never_gives_up(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (httpx): no deadline at all (polls every 60 s, forever)."""
    return _therouter_poller(base_url, api_key, prompt, interval=60, deadline=float("inf"))


async def wrong_status_word(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (httpx async): waits for RunComfy's "completed" from TheRouter, which says
    "succeeded"; gives up after 600 s."""
    async with httpx.AsyncClient(base_url=base_url, headers=_auth(api_key)) as http:
        job = (await http.post(TR_SUBMIT, params={"async": "true"},
                               json={"model": MODEL, "prompt": prompt})).json()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 600
        while loop.time() < deadline:
            job = (await http.get(f"/v1/jobs/{job['id']}")).json()
            if job["status"] == "completed":
                return job["unsigned_urls"]
            if job["status"] in TR_FAILED:
                raise GenerationFailed(job["status"])
            await asyncio.sleep(5)
    raise GenerationFailed(f"job {job['id']} never completed")


def result_before_success(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (requests): tries the result right after submitting, "in case it is quick"."""
    with requests.Session() as http:
        http.headers.update(_auth(api_key))
        request_id = http.post(base_url + RC_SUBMIT, json={"prompt": prompt}).json()["request_id"]
        result_url = f"{base_url}/v1/requests/{request_id}/result"
        early = http.get(result_url).json()
        if early.get("output"):
            return early["output"]
        while True:
            time.sleep(5)
            status = http.get(f"{base_url}/v1/requests/{request_id}/status").json()["status"]
            if status == "completed":
                return http.get(result_url).json()["output"]
            if status in RC_FAILED:
                raise GenerationFailed(status)


def hammers_after_5xx(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (requests + urllib3 Retry): the HTTP library retries 5xx at once, ignoring
    Retry-After (``backoff_factor=0``, ``respect_retry_after_header=False``)."""
    retry = Retry(total=5, backoff_factor=0, status_forcelist=(500, 502, 503, 504),
                  allowed_methods=None, respect_retry_after_header=False)
    with requests.Session() as http:
        http.mount("http://", HTTPAdapter(max_retries=retry))
        http.headers.update(_auth(api_key))
        job = http.post(base_url + TR_SUBMIT, params={"async": "true"},
                        json={"model": MODEL, "prompt": prompt}).json()
        for _ in range(200):
            job = http.get(f"{base_url}/v1/jobs/{job['id']}").json()
            if job["status"] == "succeeded":
                return job["unsigned_urls"]
            if job["status"] in TR_FAILED:
                raise GenerationFailed(job["status"])
            time.sleep(5)
    raise GenerationFailed("gave up")


async def crashes_on_truncated_body(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (httpx async + anyio): parses every answer as JSON, no error handling."""
    async with httpx.AsyncClient(base_url=base_url, headers=_auth(api_key)) as http:
        job = (await http.post(TR_SUBMIT, params={"async": "true"},
                               json={"model": MODEL, "prompt": prompt})).json()
        while True:
            await anyio.sleep(5)
            job = (await http.get(f"/v1/jobs/{job['id']}")).json()
            if job["status"] == "succeeded":
                return job["unsigned_urls"]
            if job["status"] in TR_FAILED:
                raise GenerationFailed(job["status"])


async def gives_up_too_early(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD (anyio): wraps the whole wait in ``anyio.fail_after(60)``."""
    async with httpx.AsyncClient(base_url=base_url, headers=_auth(api_key)) as http:
        request_id = (await http.post(RC_SUBMIT, json={"prompt": prompt})).json()["request_id"]
        with anyio.fail_after(60):
            while True:
                status = (await http.get(f"/v1/requests/{request_id}/status")).json()["status"]
                if status == "completed":
                    return (await http.get(f"/v1/requests/{request_id}/result")).json()
                if status in RC_FAILED:
                    raise GenerationFailed(status)
                await anyio.sleep(5)


def sync_mode_openai(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD for jobs over 100 s (the official OpenAI client, sync): ``images.generate`` without
    ``?async=true`` waits at TheRouter's edge, which gives up at 100 s (the SDK then retries,
    submitting new jobs)."""
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key)
    with client:
        return client.images.generate(model=MODEL, prompt=prompt).data


# The official DashScope SDK, as its docs use it -------------------------------------------------


def hammers_cancel(base_url: str, api_key: str, prompt: str) -> list[str]:
    """BAD. httpx, DashScope: polls every 5 s, but while the task runs sends its cancel again
    and again at once (each refused: only a PENDING task can be cancelled)."""
    with httpx.Client(base_url=base_url, headers=_auth(api_key)) as client:
        task = client.post("/api/v1/services/aigc/text2image/image-synthesis",
                           headers={"X-DashScope-Async": "enable"},
                           json={"model": "wan2.2-t2i-flash", "input": {"prompt": prompt},
                                 "parameters": {"n": 1}}).json()["output"]["task_id"]
        started = time.monotonic()
        while time.monotonic() - started < 600:
            output = client.get(f"/api/v1/tasks/{task}").json()["output"]
            if output["task_status"] == "SUCCEEDED":
                return [result["url"] for result in output["results"]]
            if output["task_status"] in ("FAILED", "CANCELED", "UNKNOWN"):
                raise GenerationFailed(output["task_status"])
            if output["task_status"] == "RUNNING":
                for _ in range(3):
                    client.post(f"/api/v1/tasks/{task}/cancel")
            time.sleep(5)
        raise GenerationFailed("gave up after 600 s")


def dashscope_sync_call(base_url: str, api_key: str, prompt: str) -> list[str]:
    """UNTESTABLE by the fault scenarios: one synchronous DashScope call (no
    ``X-DashScope-Async``), no retries. It never polls, where those scenarios script their
    faults, so they cannot vouch for it (they used to PASS it)."""
    with httpx.Client(base_url=base_url, headers=_auth(api_key), timeout=None) as client:
        answer = client.post("/api/v1/services/aigc/text2image/image-synthesis", json={
            "model": "wan2.2-t2i-flash", "input": {"prompt": prompt}, "parameters": {"n": 1}})
        answer.raise_for_status()
        output = answer.json()["output"]
        if output["task_status"] != "SUCCEEDED":
            raise GenerationFailed(output["task_status"])
        return [result["url"] for result in output["results"]]


def polls_a_deleted_job(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD. httpx: treats a 404 on status as transient and polls on for 10 minutes, although
    RunComfy answers 404 "has expired and was deleted" for good."""
    with httpx.Client(base_url=base_url, headers=_auth(api_key)) as client:
        job = client.post(RC_SUBMIT, json={"prompt": prompt}).json()["request_id"]
        started = time.monotonic()
        while time.monotonic() - started < 600:
            answer = client.get(f"/v1/requests/{job}/status")
            if answer.status_code == 200:
                status = answer.json()["status"]
                if status == "completed":
                    return client.get(f"/v1/requests/{job}/result").json()
                if status in RC_FAILED:
                    raise GenerationFailed(status)
            time.sleep(5)
        raise GenerationFailed("gave up after 600 s")


def crashes_on_a_failed_job(base_url: str, api_key: str, prompt: str) -> Any:
    """BAD. httpx: polls well, but on any terminal status reads the output as if it had
    succeeded, so a failed job ends in a KeyError from its own code, not a reported failure."""
    with httpx.Client(base_url=base_url, headers=_auth(api_key)) as client:
        job = client.post(RC_SUBMIT, json={"prompt": prompt}).json()["request_id"]
        started = time.monotonic()
        while time.monotonic() - started < 600:
            answer = client.get(f"/v1/requests/{job}/status")
            if answer.status_code == 200 and answer.json()["status"] in ("completed", "failed",
                                                                         "cancelled"):
                result = client.get(f"/v1/requests/{job}/result").json()
                return result["output"]  # a failed job's result has no output: KeyError
            time.sleep(5)
        raise GenerationFailed("gave up after 600 s")


def dashscope_sdk_call(base_url: str, api_key: str, prompt: str) -> list[str]:
    """``ImageSynthesis.call`` (submit + ``wait``), pointed at the fake by its base URL only.

    Known bad, in its own code: ``wait()`` retries only 503/504, without Retry-After, so a 429
    or 502 poll ends the wait; a dropped or truncated answer raises from ``requests``; and it
    never gives up on a task stuck in the queue."""
    saved = dashscope.base_http_api_url
    dashscope.base_http_api_url = f"{base_url}/api/v1"
    try:
        answer = dashscope.ImageSynthesis.call(model="wan2.2-t2i-flash", prompt=prompt, n=1,
                                               api_key=api_key)
    finally:
        dashscope.base_http_api_url = saved
    if answer.status_code != 200 or answer.output.task_status != "SUCCEEDED":
        raise GenerationFailed(f"{answer.status_code} {answer.code}: "
                               f"{answer.output and answer.output.task_status}")
    return [r.url for r in answer.output.results if r.url]
