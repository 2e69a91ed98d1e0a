"""Several ``wanmock serve`` processes on one Redis are one fake: each request goes to a random
worker, and the FIFO, the slots, positions, key isolation, the journal, the fake clock and signed
URLs hold across them; a worker killed with SIGKILL, or all of them stopped, loses nothing."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from .clients import FACTS, status_url, submit_args
from .workers import Worker, config_file

KEY_A = {"authorization": "Bearer key-a"}
KEY_B = {"authorization": "Bearer key-b"}


@pytest.fixture
def config(tmp_path: Path, redis_url: str, namespace: str) -> Path:
    return config_file(tmp_path, redis_url, namespace)


@pytest.fixture
def workers(config: Path) -> Iterator[list[Worker]]:
    started = [Worker(config) for _ in range(3)]
    yield started
    for worker in started:
        worker.stop()


class Fleet:
    """Sends each request to a random worker, counting the provider requests sent."""

    def __init__(self, workers: list[Worker], seed: int = 7) -> None:
        self.workers = workers
        self.rng = random.Random(seed)
        self.sent = 0

    def any(self) -> Worker:
        return self.rng.choice(self.workers)

    def submit(self, headers: dict[str, str]) -> str:
        args = submit_args()
        args["headers"] = {**args["headers"], **headers}
        answer = self.any().client.request(**args)
        self.sent += 1
        assert answer.status_code < 300, answer.text
        return FACTS.job_id(answer.json())

    def status(self, job_id: str, headers: dict[str, str]) -> httpx.Response:
        self.sent += 1
        return self.any().client.get(status_url(job_id), headers=headers)


def journal_total(worker: Worker, expected: int) -> int:
    """The journal total a worker reports once it counts ``expected`` requests: entries are
    written in batches a few milliseconds after each answer (a real-time wait, bounded)."""
    deadline = time.monotonic() + 5
    while True:
        total: int = worker.client.get("/__admin/journal").json()["total"]
        if total >= expected or time.monotonic() > deadline:
            return total
        time.sleep(0.01)


def _position(answer: httpx.Response) -> Any:
    body = answer.json()
    return body.get("queue_position", body.get("position"))


def test_three_workers_are_one_fake(workers: list[Worker]) -> None:
    fleet = Fleet(workers)
    ids = [fleet.submit(KEY_A) for _ in range(8)]
    answers = [fleet.status(job_id, KEY_A) for job_id in ids]
    phases = [FACTS.phase(a.json()).value for a in answers]
    assert phases == ["running"] * 2 + ["queued"] * 6  # two slots, FIFO in submission order
    positions = [_position(a) for a in answers[2:]]
    assert positions == [0, 1, 2, 3, 4, 5]  # distinct, in order, whichever worker answered
    # Another key has its own queue and cannot see key A's jobs.
    other = fleet.submit(KEY_B)
    assert FACTS.phase(fleet.status(other, KEY_B).json()).value == "running"
    assert fleet.status(ids[0], KEY_B).status_code in (403, 404)
    # A fake-clock advance through one worker is seen by all.
    moved = workers[0].client.post("/__admin/clock/advance", json={"seconds": 60})
    assert moved.status_code == 200
    now = moved.json()["now"]
    assert {w.client.get("/__admin/clock").json()["now"] for w in workers} == {now}
    later = [fleet.status(job_id, KEY_A) for job_id in ids]
    assert [FACTS.phase(a.json()).value for a in later] == (
        ["succeeded"] * 2 + ["running"] * 2 + ["queued"] * 4)
    assert [_position(a) for a in later[4:]] == [0, 1, 2, 3]  # shrunk by the two started
    # An image URL signed by one worker downloads from another.
    result_path = FACTS.result.url_path(ids[0]) if FACTS.result else status_url(ids[0])
    result = workers[0].client.get(result_path, headers=KEY_A)
    fleet.sent += 1
    urls = FACTS.image_urls(result.json())
    assert urls and urlsplit(urls[0]).netloc == urlsplit(workers[0].url).netloc
    parts = urlsplit(urls[0])
    image = workers[2].client.get(f"{parts.path}?{parts.query}")
    fleet.sent += 1
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    # A preset switched through one worker is every worker's (at once with a shared fake clock).
    switched = workers[1].client.post("/__admin/presets", json={"name": "flaky"})
    assert switched.status_code == 200
    assert {w.client.get("/__admin/presets").json()["current"] for w in workers} == {"flaky"}
    # Journal totals on any worker are every request any worker answered.
    assert {journal_total(w, fleet.sent) for w in workers} == {fleet.sent}
    jobs = workers[1].client.get("/__admin/journal/jobs").json()["jobs"]
    # 8 + 8 polls by key A; key B's refused look at ids[0] is no poll of A's job
    assert sum(job["polls"] for job in jobs if job["job_id"] in ids) == 16


def test_a_killed_worker_loses_no_job_and_new_workers_keep_everything(
        config: Path, workers: list[Worker]) -> None:
    fleet = Fleet(workers, seed=3)
    ids = [fleet.submit(KEY_A) for _ in range(6)]
    acknowledged: list[str] = []
    failed: list[str] = []
    by_survivors = [0]
    lock = threading.Lock()

    def load(seed: int) -> None:  # submits to random workers, the killed one included
        rng = random.Random(seed)
        clients = [httpx.Client(base_url=w.url, timeout=10) for w in workers]
        try:
            for _ in range(30):
                args = submit_args()
                args["headers"] = {**args["headers"], **KEY_A}
                index = rng.randrange(len(clients))
                try:
                    answer = clients[index].request(**args)
                except httpx.TransportError as exc:  # the killed worker's connections
                    with lock:
                        failed.append(type(exc).__name__)
                    continue
                assert answer.status_code < 300, answer.text
                with lock:
                    acknowledged.append(FACTS.job_id(answer.json()))
                    by_survivors[0] += index != 1
        finally:
            for client in clients:
                client.close()

    threads = [threading.Thread(target=load, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.005)  # real requests in flight: kill in the middle of them
    workers[1].kill(signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=60)
    assert failed, "no request reached the killed worker: the test proved nothing"
    alive = Fleet([workers[0], workers[2]], seed=4)
    for job_id in ids + acknowledged:
        assert alive.status(job_id, KEY_A).status_code == 200, job_id
    # Stop every worker (gracefully: journal batches are written) and start new ones.
    for worker in (workers[0], workers[2]):
        worker.stop()
    fresh = [Worker(config) for _ in range(2)]
    workers[:] = fresh  # the fixture stops these
    # The killed worker's last batch of journal entries (milliseconds) may die with it.
    total = journal_total(fresh[0], fleet.sent + by_survivors[0] + alive.sent)
    assert total >= fleet.sent + by_survivors[0] + alive.sent
    again = Fleet(fresh, seed=5)
    answers = [again.status(job_id, KEY_A) for job_id in ids]
    assert [FACTS.phase(a.json()).value for a in answers] == ["running"] * 2 + ["queued"] * 4
    assert journal_total(fresh[1], total + again.sent) == total + again.sent


def test_one_command_serves_several_workers_on_one_port(config: Path) -> None:
    server = Worker(config, "--workers", "2")
    try:
        pids = set()
        for _ in range(40):  # a new connection each time: the kernel picks the worker
            with httpx.Client(base_url=server.url) as client:
                pids.add(client.get("/__admin/health").json()["worker"])
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        workers = {int(pid) for pid in children.read_text().split()}
        assert len(workers) == 2 and pids and pids <= workers
        # A worker that dies is started again.
        os.kill(min(workers), signal.SIGKILL)
        deadline = time.monotonic() + 20  # a real process starting, polled with a deadline
        while True:
            now_workers = {int(pid) for pid in children.read_text().split()}
            if len(now_workers) == 2 and min(workers) not in now_workers:
                break
            assert time.monotonic() < deadline, f"no new worker: {now_workers}"
            time.sleep(0.02)
        for _ in range(10):
            with httpx.Client(base_url=server.url) as client:
                assert client.get("/__admin/health").json()["worker"] in now_workers
    finally:
        server.stop()
