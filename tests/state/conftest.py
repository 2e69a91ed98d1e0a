"""A real ``redis-server`` for the state tests: on a unix socket in a temp dir, persistence off,
stopped at the end. Skipped (saying what to install) only if there is no redis-server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

EXE = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One redis-server process; ``url`` reaches it."""

    def __init__(self, where: Path, *, appendonly: bool = False) -> None:
        if not os.path.exists(EXE):
            pytest.skip("redis-server not found: run tools/ensure-system-packages redis-server "
                        "(or apt-get install redis-server)")
        self.socket = where / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.args = [EXE, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm",
                     "700", "--save", "", "--appendonly", "yes" if appendonly else "no",
                     "--dir", str(where)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10  # a real process starting, polled with a deadline
        while True:
            try:
                with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                    client.ping()
                return self
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.01)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's redis-server (tests keep apart by namespace)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def new_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RedisServer]]:
    """``new_redis()``: a redis-server of the test's own (to pause or restart), stopped after."""
    started: list[RedisServer] = []

    def factory(*, appendonly: bool = False) -> RedisServer:
        server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=appendonly).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"
