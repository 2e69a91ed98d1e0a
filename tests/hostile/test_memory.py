"""Memory stays bounded whatever clients do: the server runs in a subprocess (``wanmock serve``)
and its resident set is read from ``/proc/<pid>/status`` while hostile clients work on it.

``WANMOCK_HOSTILE_SECONDS`` (default 3) sets how long each attack lasts. Before the connection
limits, 4 clients pipelining polls without reading took uvicorn from 52 to 558 MB in 3 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hostile.sockets import RUNCOMFY, connect, flood_without_reading
from wanmock.server.web.serve import SERVERS

SECONDS = float(os.environ.get("WANMOCK_HOSTILE_SECONDS", "3"))
#: Growth allowed while attacked, in MB: the journal and caches filling, allocator slack.
BOUND_MB = 40
CLIENTS = 4

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="reads the server's RSS from /proc")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found, status
    return int(found.group(1)) / 1024


class Served:
    """``wanmock serve`` in a subprocess, its base URL and pid."""

    def __init__(self, server: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wanmock.server", "serve", "--port", "0", "--fake-clock",
             "--server", server, "--seed", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().split()[3]
        deadline = time.monotonic() + 20  # real start-up of another process, not a simulated wait
        while True:
            try:
                httpx.get(self.url + "/__admin/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{server} did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture(params=SERVERS)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    if request.param == "granian":
        pytest.importorskip("granian")
    server = Served(request.param)
    yield server
    server.stop()


def peak_growth_during(served: Served, attack: list[threading.Thread]) -> tuple[float, float]:
    """(RSS before, highest RSS growth) while the ``attack`` threads run, sampled every 0.1 s."""
    before = rss_mb(served.process.pid)
    peak = before
    for thread in attack:
        thread.start()
    while any(t.is_alive() for t in attack):
        peak = max(peak, rss_mb(served.process.pid))
        time.sleep(0.1)  # a sampling interval, while the attack runs for real
    for thread in attack:
        thread.join()
    return before, peak - before


def test_clients_that_pipeline_and_never_read_cost_bounded_memory(served: Served) -> None:
    headers = {"authorization": "Bearer k"}
    for _ in range(20):  # warm up: imports, caches and the journal's first pages
        job = httpx.post(served.url + RUNCOMFY, json={"prompt": "x"}, headers=headers).json()
        httpx.get(f"{served.url}/v1/requests/{job['request_id']}/status", headers=headers)
    poll = (f"GET /v1/requests/{job['request_id']}/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer k\r\n\r\n").encode()
    until = time.monotonic() + SECONDS

    def never_read() -> None:
        while time.monotonic() < until:  # reconnect if the server drops the connection
            with connect(served.url, receive_buffer=4096) as sock:
                flood_without_reading(sock, poll, until=until)

    before, growth = peak_growth_during(
        served, [threading.Thread(target=never_read) for _ in range(CLIENTS)])
    assert growth < BOUND_MB, f"RSS grew {growth:.0f} MB from {before:.0f} MB in {SECONDS} s"
    assert httpx.get(served.url + "/__admin/health", timeout=5).status_code == 200


def test_endless_request_heads_cost_bounded_memory(served: Served) -> None:
    """A header that never ends is refused past the head limit instead of being buffered."""
    until = time.monotonic() + SECONDS
    chunk = b"a" * 65536

    def endless_head() -> None:
        while time.monotonic() < until:
            with connect(served.url) as sock:
                try:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
                    while time.monotonic() < until:
                        sock.sendall(chunk)
                except OSError:  # refused (431) and closed: start again
                    continue

    before, growth = peak_growth_during(
        served, [threading.Thread(target=endless_head) for _ in range(CLIENTS)])
    assert growth < BOUND_MB, f"RSS grew {growth:.0f} MB from {before:.0f} MB in {SECONDS} s"
