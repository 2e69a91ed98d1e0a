"""Running an app on a real socket: the CLI's foreground server and tests' :class:`LiveServer`.

>>> from wanmock.server import create_app, FakeClock
>>> with LiveServer(create_app(clock=FakeClock())) as server:   # doctest: +SKIP
...     httpx.get(server.url + "/__admin/health")
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from ..errors import ConfigError
from .edge import ConnectionDropped

__all__ = ["LiveServer", "bind", "quiet_dropped_connections", "serve_granian"]


class _NotDropped(logging.Filter):
    """Hide uvicorn's traceback for connections the ``drop`` fault closed on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def quiet_dropped_connections() -> None:
    """Install the filter on uvicorn's error logger (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _NotDropped) for f in logger.filters):
        logger.addFilter(_NotDropped())


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (0: a free port), or a ConfigError saying why."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it small responses wait ~40 ms for delayed ACKs
    # (uvicorn sets no TCP_NODELAY on sockets it is handed).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--host/--port: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class LiveServer:
    """Serve ``app`` with uvicorn in a background thread on a free loopback port.

    Use as a context manager; ``url`` is the base URL. Stops (and joins) on exit.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> LiveServer:
        quiet_dropped_connections()
        self._thread.start()
        deadline = time.monotonic() + 10  # a real-time start-up bound, not a simulated wait
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_granian(app: ASGIApp, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` in this process with granian (Rust HTTP, one worker): the fastest way
    measured on a 2-core box (``benchmarks/server.py``). Blocks until interrupted."""
    import asyncio

    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(app, address=host, port=port, interface=Interfaces.ASGI,
                    log_level=LogLevels(log_level))
    asyncio.run(server.serve())
