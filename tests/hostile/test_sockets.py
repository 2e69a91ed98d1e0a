"""Real sockets against both servers: hostile connections must not starve a normal client, and
each kind of stalled socket is closed once its configured timeout has passed.

Timeouts here are half a second (``SHORT``), so nothing sleeps long: tests only wait on sockets
with a timeout. Where granian cannot do what uvicorn does, the expectation says so (and the README's
"Security and limits" section documents it); a granian release that fixes it fails the test, to
get the documentation updated.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from tests.hostile.sockets import (
    HEALTH,
    RUNCOMFY,
    Responses,
    connect,
    fill_without_reading,
    flood_without_reading,
    read_response,
    wait_closed,
)
from wanmock.server import Config
from wanmock.server.errors import ConfigError
from wanmock.server.web.connections import ConnectionLimits
from wanmock.server.web.serve import SERVERS, LiveServer, raise_open_files_limit

T = 0.5
SHORT = ConnectionLimits(keep_alive_timeout=T, header_timeout=T, body_timeout=T, write_timeout=T)
#: Slack for a loaded 2-core box: a socket must be closed by ``T + SLACK`` seconds.
SLACK = 1.5
KEY = {"authorization": "Bearer hostile-key"}


@pytest.fixture(params=SERVERS)
def server_name(request: pytest.FixtureRequest) -> str:
    if request.param == "granian":
        pytest.importorskip("granian")
    raise_open_files_limit(2000)  # ~800 sockets on both ends in this process
    return str(request.param)


@pytest.fixture
def short_server(server_name: str, make_app: Callable[..., Starlette]) -> Iterator[LiveServer]:
    with LiveServer(make_app(), server=server_name, limits=SHORT) as live:  # type: ignore[arg-type]
        yield live


def poll_request(job: str) -> bytes:
    return (f"GET /v1/requests/{job}/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {KEY['authorization']}\r\n\r\n").encode()


def submit(url: str) -> str:
    answer = httpx.post(url + RUNCOMFY, json={"prompt": "x"}, headers=KEY, timeout=5)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["request_id"])


# -- a normal client among hostile connections -------------------------------------------------

def test_a_normal_client_gets_every_answer_among_hostile_connections(
    server_name: str, make_app: Callable[..., Starlette]
) -> None:
    """140 idle keep-alive connections (granian served 128 connections in all), 200 slowloris
    sockets, slow bodies, HTTP/0.9, clients that pipeline and never read, and half-closers: a
    normal client, on fresh connections and on a pooled one, still gets all its answers fast."""
    limits = ConnectionLimits()  # the defaults: nothing hostile times out during the test
    with LiveServer(make_app(), server=server_name, limits=limits) as live,  \
            contextlib.ExitStack() as held:  # type: ignore[arg-type]
        job = submit(live.url)

        def hold(sock: socket.socket) -> socket.socket:
            held.callback(sock.close)
            return sock

        for _ in range(140):  # a client's idle pool
            sock = hold(connect(live.url))
            sock.sendall(HEALTH)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        for i in range(200):  # slowloris: headers that never end
            hold(connect(live.url)).sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1"
                                            b"\r\nX-Slow-%d: a" % i)
        for _ in range(20):  # bodies that never end
            hold(connect(live.url)).sendall(
                b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"prom"
                % RUNCOMFY.encode())
        for _ in range(20):  # HTTP/0.9
            hold(connect(live.url)).sendall(b"GET /x\r\n")
        for _ in range(4):  # pipelining, never reading
            fill_without_reading(hold(connect(live.url, receive_buffer=4096)), poll_request(job))
        for _ in range(10):  # half-closing after a request
            sock = hold(connect(live.url))
            sock.sendall(HEALTH)
            sock.shutdown(socket.SHUT_WR)

        started = time.monotonic()
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection for each request
        with httpx.Client(base_url=live.url, headers=KEY, timeout=5, limits=fresh) as new, \
                httpx.Client(base_url=live.url, headers=KEY, timeout=5) as pooled:
            answers = []
            for client in (new, pooled) * 4:
                answers.append(client.post(RUNCOMFY, json={"prompt": "a lighthouse"}))
                made = answers[-1].json().get("request_id", job)
                answers.append(client.get(f"/v1/requests/{made}/status"))
                answers.append(client.get("/__admin/health"))
        elapsed = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 24
    assert elapsed < 5, f"24 requests took {elapsed:.1f} s among hostile connections"


# -- each stalled socket is closed after its timeout ------------------------------------------

@dataclass(frozen=True)
class Expect:
    """How a stalled socket must end: the answer's first bytes (``b""``: none; ``None``: not
    checked, it depends on timing), and whether it is closed after the timeout
    (``"timeout"``) or at once (``"at once"``)."""

    answer: bytes | None
    closed: str


Stalled = tuple[socket.socket, float]  # the socket, and when its server timer started


def idle_new(url: str) -> Stalled:
    return connect(url), time.monotonic()


def idle_keep_alive(url: str) -> Stalled:
    sock = connect(url)
    sock.sendall(HEALTH)
    assert read_response(sock).startswith(b"HTTP/1.1 200")
    return sock, time.monotonic()


def slow_headers(url: str) -> Stalled:
    sock = connect(url)
    sock.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
    return sock, time.monotonic()


def dripped_headers(url: str) -> Stalled:
    """One byte every 0.1 s: the deadline counts from the first byte, not the last."""
    sock = connect(url)
    started = time.monotonic()
    with contextlib.suppress(OSError):
        for byte in b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n":
            sock.send(bytes([byte]))
            if select.select([sock], [], [], 0.1)[0]:  # a drip, at most ~T + SLACK in all
                break
    return sock, started


def slow_body(url: str) -> Stalled:
    sock = connect(url)
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\": "
                 % RUNCOMFY.encode())
    return sock, time.monotonic()


def http_09(url: str) -> Stalled:
    sock = connect(url)
    sock.sendall(b"GET /x\r\n")
    return sock, time.monotonic()


def half_close(url: str) -> Stalled:
    sock = connect(url)
    sock.sendall(HEALTH)
    sock.shutdown(socket.SHUT_WR)
    return sock, time.monotonic()


def half_close_pipelined(url: str) -> Stalled:
    """Two requests, then a half-close: the second is still queued when the EOF arrives."""
    sock = connect(url)
    sock.sendall(HEALTH * 2)
    sock.shutdown(socket.SHUT_WR)
    return sock, time.monotonic()


CASES: dict[str, tuple[Callable[[str], Stalled], dict[str, Expect]]] = {
    "idle-new-connection": (idle_new, {"uvicorn": Expect(b"", "timeout"),
                                       "granian": Expect(b"", "timeout")}),
    "idle-keep-alive": (idle_keep_alive, {"uvicorn": Expect(b"", "timeout"),
                                          "granian": Expect(b"", "timeout")}),
    # hyper closes without an answer
    "slow-headers": (slow_headers, {"uvicorn": Expect(b"HTTP/1.1 408", "timeout"),
                                    "granian": Expect(b"", "timeout")}),
    "dripped-headers": (dripped_headers, {"uvicorn": Expect(b"HTTP/1.1 408", "timeout"),
                                          "granian": Expect(b"", "timeout")}),
    "slow-body": (slow_body, {"uvicorn": Expect(b"HTTP/1.1 408", "timeout"),
                              "granian": Expect(b"HTTP/1.1 408", "timeout")}),
    # httptools waits for a version that never comes; hyper refuses at once
    "http-0.9": (http_09, {"uvicorn": Expect(b"HTTP/1.1 408", "timeout"),
                           "granian": Expect(b"HTTP/1.1 400", "at once")}),
    # granian (hyper without half_close) closes at the EOF, answering only what was already
    # answered: a documented limit
    "half-close": (half_close, {"uvicorn": Expect(b"HTTP/1.1 200", "at once"),
                                "granian": Expect(None, "at once")}),
    "half-close-pipelined": (half_close_pipelined, {
        "uvicorn": Expect(b"HTTP/1.1 200", "at once"), "granian": Expect(None, "at once")}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_stalled_socket_is_closed_after_its_timeout(short_server: LiveServer,
                                                      case: str) -> None:
    make, expected = CASES[case]
    expect = expected[short_server.server]
    sock, started = make(short_server.url)
    with sock:
        waited = time.monotonic()
        got, closed = wait_closed(sock, started + T + SLACK - waited)
    if expect.answer is not None:
        assert got.startswith(expect.answer) and (expect.answer or not got), got[:80]
    assert closed is not None, f"{case}: still open {T + SLACK} s after a {T} s timeout"
    after = waited + closed - started
    if expect.closed == "timeout":
        assert after >= T * 0.8, f"{case}: closed after {after:.2f} s, before the {T} s timeout"
    else:
        assert after < T, f"{case}: answered after {after:.2f} s"
    if case == "half-close-pipelined" and expect.answer:
        assert got.count(b"HTTP/1.1 200") == 2, "both pipelined requests are answered"


def test_a_client_that_never_reads_is_dropped_after_the_write_timeout(
    short_server: LiveServer
) -> None:
    """uvicorn drops it once its answers have waited ``write_timeout``; granian has no write
    timeout (it stops reading instead: memory stays bounded, see ``test_memory``), so the
    connection stays until the client closes it: a documented limit."""
    job = submit(short_server.url)
    with connect(short_server.url, receive_buffer=4096) as sock:
        dropped = flood_without_reading(sock, poll_request(job),
                                        until=time.monotonic() + T + SLACK + 1)
    if short_server.server == "granian":
        assert dropped is None
    else:
        assert dropped is not None, "still connected long after the write timeout"
        assert dropped >= T * 0.8


def test_a_request_head_over_the_limit_is_refused_with_431(short_server: LiveServer) -> None:
    """uvicorn refuses past ``max_head_bytes`` (+ one 4 KiB slice); hyper checks its buffer
    only between reads, so granian's bound is up to twice that."""
    with connect(short_server.url) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                         + b"a" * (3 * SHORT.max_head_bytes) + b"\r\n\r\n")
        got, after = wait_closed(sock, SLACK)
    assert got.startswith(b"HTTP/1.1 431") and after is not None


def test_a_request_head_under_the_limit_is_served(short_server: LiveServer) -> None:
    """10 KB ids and headers (the input tests' sizes) reach the app, which answers them."""
    with connect(short_server.url) as sock:
        sock.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                     + b"a" * 10_000 + b"\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_pipelined_requests_are_all_answered_in_order(short_server: LiveServer) -> None:
    """The pipelining flow control holds requests back; it must not lose or reorder any."""
    job = submit(short_server.url)
    requests = [HEALTH if i % 2 else poll_request(job) for i in range(300)]
    with connect(short_server.url) as sock:
        sock.sendall(b"".join(requests))
        responses = Responses(sock)
        answers = [responses.next() for _ in requests]
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    assert [b"request_id" in a for a in answers] == [not i % 2 for i in range(300)]


# -- the settings -----------------------------------------------------------------------------

def test_server_settings_set_the_connection_limits() -> None:
    config = Config().replace(server={"max_connections": 50, "keep_alive_timeout": 7,
                                      "read_timeout": 3})
    limits = ConnectionLimits.from_config(config.server)
    assert (limits.max_connections, limits.keep_alive_timeout) == (50, 7.0)
    assert limits.header_timeout == limits.body_timeout == limits.write_timeout == 3.0
    assert ConnectionLimits.from_config(Config().server) == ConnectionLimits()  # same defaults
    options = limits.granian_options()
    assert (options["backpressure"], options["backlog"]) == (50, limits.backlog)
    assert options["http1_settings"].header_read_timeout == 7000  # the larger of the two, in ms


@pytest.mark.parametrize(("key", "value", "message"), [
    ("read_timeout", 0, "server.read_timeout must be > 0"),
    ("keep_alive_timeout", -1, "server.keep_alive_timeout must be > 0"),
    ("max_connections", 0, "server.max_connections must be >= 1"),
])
def test_bad_server_settings_are_refused_by_name(key: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config().replace(server={key: value})


def test_live_server_refuses_an_unknown_server(make_app: Callable[..., Starlette]) -> None:
    with pytest.raises(ConfigError, match="uvicorn, granian"):
        LiveServer(make_app(), server="hypercorn")  # type: ignore[arg-type]
