"""Running an app on a real socket: the CLI's foreground server and tests' :class:`LiveServer`,
under uvicorn or granian, with the connection limits of :mod:`.connections` either way.

>>> from wanmock.server import create_app, FakeClock
>>> with LiveServer(create_app(clock=FakeClock()), server="granian") as live:  # doctest: +SKIP
...     httpx.get(live.url + "/__admin/health")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp

from ..errors import ConfigError
from .connections import BodyDeadline, ConnectionLimits, guarded_protocol
from .edge import ConnectionDropped

__all__ = ["SERVERS", "LiveServer", "bind", "quiet_dropped_connections", "raise_open_files_limit",
           "serve_granian", "serve_uvicorn", "serve_workers", "uvicorn_config"]

ServerName = Literal["uvicorn", "granian"]
#: The HTTP servers wanmock runs on; uvicorn is the default.
SERVERS: tuple[ServerName, ...] = ("uvicorn", "granian")
#: Seconds a stopping server waits for requests in flight before closing their connections.
GRACEFUL_SHUTDOWN = 5


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
    """Serve ``app`` in a background thread on a free loopback port, with uvicorn (default) or
    granian, under ``limits`` (default :class:`ConnectionLimits`).

    Use as a context manager; ``url`` is the base URL. Stops (and joins) on exit. The app's
    lifespan is not run (tests build the app themselves).
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0,
                 server: ServerName = "uvicorn", limits: ConnectionLimits | None = None) -> None:
        if server not in SERVERS:
            raise ConfigError(f"server must be one of {', '.join(SERVERS)}, got {server!r}")
        self.server = server
        self.limits = limits or ConnectionLimits()
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        self._loop: asyncio.AbstractEventLoop | None = None
        if server == "uvicorn":
            config = uvicorn_config(app, self.limits, log_level="warning", lifespan="off",
                                    access_log=False)
            self._uvicorn: uvicorn.Server | None = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._uvicorn.run,
                                            kwargs={"sockets": [self._sock]}, daemon=True)
        else:
            self._uvicorn = None
            bound_host, bound_port = self._sock.getsockname()[:2]
            self._sock.close()  # granian binds by itself, on the port found free above
            self._granian = granian_server(app, bound_host, bound_port, self.limits,
                                           log_level="error", lifespan=False)
            self._thread = threading.Thread(target=self._run_granian, daemon=True)

    def _run_granian(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._granian.serve())

    def _ready(self) -> bool:
        if self._uvicorn is not None:
            return self._uvicorn.started
        try:
            socket.create_connection(_split(self.url), timeout=0.5).close()
        except OSError:
            return False
        return True

    def start(self) -> LiveServer:
        quiet_dropped_connections()
        self._thread.start()
        deadline = time.monotonic() + 10  # a real-time start-up bound, not a simulated wait
        while not self._ready():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the live {self.server} server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._granian.stop)
        self._thread.join(timeout=10 + GRACEFUL_SHUTDOWN)
        self._sock.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _split(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host.strip("[]"), int(port)


def uvicorn_config(app: ASGIApp, limits: ConnectionLimits, **options: Any) -> uvicorn.Config:
    """A ``uvicorn.Config`` for ``app`` under ``limits`` (see :mod:`.connections`); ``options``
    are passed on (``log_level``, ``lifespan``, ``access_log``…)."""
    return uvicorn.Config(
        app, http=guarded_protocol(limits), ws="none", backlog=limits.backlog,
        # uvicorn answers 503 once connections >= limit, counting the one asking
        limit_concurrency=limits.max_connections + 1,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN, **options)


def serve_uvicorn(app: ASGIApp, sock: socket.socket, limits: ConnectionLimits,
                  log_level: str) -> None:
    """Serve ``app`` with uvicorn on ``sock`` in the foreground (the CLI). Blocks."""
    quiet_dropped_connections()
    uvicorn.Server(uvicorn_config(app, limits, log_level=log_level, lifespan="on")).run(
        sockets=[sock])


def serve_workers(build: Callable[[], ASGIApp], sock: socket.socket, limits: ConnectionLimits,
                  log_level: str, workers: int) -> None:
    """Serve with ``workers`` forked processes accepting on one socket, each with its own app
    from ``build()`` (its own connections to the shared state). A worker that dies is started
    again; SIGINT or SIGTERM stops them all. Blocks."""
    children: dict[int, float] = {}
    quick_deaths = 0
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                serve_uvicorn(build(), sock, limits, log_level)
                code = 0
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    sock.listen(limits.backlog)  # connections wait in the backlog while workers start
    for _ in range(workers):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        born = children.pop(pid, None)
        if stopping or born is None:
            continue
        quick_deaths = quick_deaths + 1 if time.monotonic() - born < 2 else 0
        logging.getLogger("wanmock").warning(
            "wanmock: worker %d ended (status %d); starting another", pid, status)
        if quick_deaths >= 5:
            stop(signal.SIGTERM, None)
            raise ConfigError("wanmock: workers keep dying at start; see the log above")
        spawn()


def granian_server(app: ASGIApp, host: str, port: int, limits: ConnectionLimits, *,
                   log_level: str, lifespan: bool) -> Any:
    """granian's embedded server for ``app`` (one worker) under ``limits``; granian has no body
    timeout, so ``app`` is wrapped in :class:`BodyDeadline`."""
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    return Server(BodyDeadline(app, limits.body_timeout), address=host, port=port,
                  interface=Interfaces.ASGI if lifespan else Interfaces.ASGINL,
                  log_level=LogLevels(log_level), **limits.granian_options())


def serve_granian(app: ASGIApp, host: str, port: int, log_level: str,
                  limits: ConnectionLimits | None = None) -> None:
    """Serve ``app`` in this process with granian (Rust HTTP, one worker): the fastest way
    measured on a 2-core box (``benchmarks/server.py``). Blocks until interrupted."""
    server = granian_server(app, host, port, limits or ConnectionLimits(),
                            log_level=log_level, lifespan=True)
    asyncio.run(server.serve())


def raise_open_files_limit(connections: int) -> None:
    """Raise this process's soft limit on open files (often 1024) to fit ``connections``
    sockets and some to spare, up to the hard limit: past it, accepting fails (``EMFILE``)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 256
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
