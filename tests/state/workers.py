"""``wanmock serve`` processes for the multi-worker tests (real processes on 127.0.0.1)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

LIFECYCLE = """
[lifecycle]
queue_delay = "fixed(0)"
run_time = "fixed(60)"
concurrency = 2
"""


def config_file(where: Path, state: str, namespace: str) -> Path:
    path = where / f"{namespace}.toml"
    path.write_text(f'[server]\nstate = "{state}"\nnamespace = "{namespace}"\n'
                    f"fake_clock = true\n{LIFECYCLE}")
    return path


class Worker:
    """One ``wanmock serve`` process on a free port; ``url`` is its base URL."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wanmock.server", "serve", "--port", "0", "--config",
             str(config), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.url = self._wait_for_url()
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def _wait_for_url(self) -> str:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30  # a real process starting, polled with a deadline
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                line = self.process.stdout.readline().decode()
                if line.startswith("wanmock serving on "):
                    return line.split()[3]
                if not line:
                    break
        self.process.kill()
        stderr = self.process.stderr.read().decode() if self.process.stderr else ""
        raise RuntimeError(f"wanmock serve did not start:\n{stderr[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.client.close()
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
