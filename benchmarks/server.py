"""Whole-server benchmark: the fake vs the raw-ASGI limit vs bare Starlette, in one run.

Every server runs on a free loopback port, one worker: under uvicorn (httptools + uvloop, access
log off) the raw-ASGI limit (b), bare Starlette (c), the fake with its journal on and off, the
raw app burning 130 µs of CPU per request (a control: uvicorn's tail latency once any app
saturates the worker); and,
as the fastest way found to serve the fake on this box, the raw limit and the fake under granian.
``wrk -t1 -c64`` drives each endpoint; servers take turns, ``--rounds`` times, and the median of
the rounds is reported (this 2-core box is shared with wrk and noisy: turns spread the noise).
Ratios are to (b) and (c) of the same run. Installs Debian's ``wrk`` if it is missing.

Endpoints: ``GET`` poll of one job and of 1000 jobs in turn (so bodies are not all memoised),
``POST`` submit, of every provider.

``--scale-out`` instead compares ``wanmock serve`` with its state in memory (1 worker) against a
Redis state (1 and 2 workers; a redis-server started here on a unix socket, persistence off):
ratios to memory-1w, Redis commands per request (``INFO commandstats``), and CPU per request of
the workers and of Redis (``/proc`` and ``INFO cpu``), plus ``redis-benchmark``'s ceiling.

    python benchmarks/server.py [--seconds 3] [--rounds 3] [--json] [--only fake,raw]
    python benchmarks/server.py --scale-out [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
UVICORN = [sys.executable, "-m", "uvicorn", "--factory", "--no-access-log",
           "--log-level", "warning"]
GRANIAN = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1",
           "--no-access-log", "--log-level", "warning"]
#: name -> (command without host/port, app). (b) and (c) come first: the ratios' baselines.
SERVERS: dict[str, tuple[list[str], str]] = {
    "raw": (UVICORN, "benchmarks.apps:raw"),
    "starlette": (UVICORN, "benchmarks.apps:starlette"),
    "fake": (UVICORN, "benchmarks.apps:fake"),
    "fake-nojournal": (UVICORN, "benchmarks.apps:fake_nojournal"),
    "raw-busy": (UVICORN, "benchmarks.apps:raw_busy"),
    "raw@granian": (GRANIAN, "benchmarks.apps:raw_app"),
    "fake@granian": (GRANIAN, "benchmarks.apps:fake_app"),
}
TR_BODY = '{"model": "wan/wan2.2-t2i-flash", "prompt": "a lighthouse at dusk"}'
RC_BODY = '{"prompt": "a lighthouse at dusk"}'
TR_SUBMIT = "/v1/images/generations?async=true"
RC_SUBMIT = "/v1/models/wan-ai/wan-2-2/flash/text-to-image"
DS_BODY = ('{"model": "wan2.2-t2i-flash", "input": {"prompt": "a lighthouse at dusk"}, '
           '"parameters": {"n": 1}}')
DS_SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"
DS_HEADERS = {"X-DashScope-Async": "enable"}
MANY = 1000


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing Debian's wrk (apt-get)", file=sys.stderr)
    for command in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "wrk"]):
        subprocess.run(command, capture_output=True, check=False)
        if shutil.which("wrk"):
            break
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed and could not be installed (apt-get install wrk)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, command: list[str], app: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port), *([app] if app else [])],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/__ping", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"{app} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def wrk(binary: str, url: str, seconds: float, method: str = "GET", body: str = "",
        paths: list[str] | None = None, headers: dict[str, str] | None = None
        ) -> dict[str, float]:
    """One wrk run; ``paths``: request these in turn instead of ``url``'s path."""
    script = 'wrk.headers["Authorization"] = "Bearer bench-key"\n'
    script += "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
                      for k, v in (headers or {}).items())
    if method == "POST":
        script += (f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                   'wrk.headers["Content-Type"] = "application/json"\n')
    if paths:
        script += ("paths = {" + ",".join(json.dumps(p) for p in paths) + "}\ni = 0\n"
                   "request = function()\n  i = i % #paths + 1\n"
                   "  return wrk.format(nil, paths[i])\nend\n")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run([binary, "-t1", "-c64", f"-d{seconds:g}s", "--latency", "-s",
                              handle.name, url], capture_output=True, text=True,
                             check=True).stdout
    finally:
        os.unlink(handle.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return {"rps": rps, "p50_ms": _ms(lat.get("50", "0ms")), "p99_ms": _ms(lat.get("99", "0ms")),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "requests": int(total.group(1)) if total else 0}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


Target = tuple[str, str, str, list[str] | None, dict[str, str] | None]


def targets(server: Server) -> dict[str, Target]:
    """name -> (method, url, body, paths in turn, headers). Poll targets are real jobs on a
    fake."""
    headers = {"authorization": "Bearer bench-key", "content-type": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        tr = [client.post(TR_SUBMIT, content=TR_BODY).json() for _ in range(MANY)]
        rc = client.post(RC_SUBMIT, content=RC_BODY).json()
        ds = client.post(DS_SUBMIT, content=DS_BODY, headers=DS_HEADERS).json()
    tr_ids = [job.get("id", "img_00000000000000000000000000") for job in tr]
    rc_id = rc.get("request_id", "00000000-0000-4000-8000-000000000000")
    ds_id = ds.get("output", {}).get("task_id", "00000000-0000-4000-8000-000000000000")
    url = server.url
    return {
        "therouter GET poll": ("GET", f"{url}/v1/jobs/{tr_ids[0]}", "", None, None),
        f"therouter GET poll {MANY} jobs": ("GET", url, "", [f"/v1/jobs/{i}" for i in tr_ids],
                                            None),
        "runcomfy GET poll": ("GET", f"{url}/v1/requests/{rc_id}/status", "", None, None),
        "dashscope GET poll": ("GET", f"{url}/api/v1/tasks/{ds_id}", "", None, None),
        "therouter POST submit": ("POST", url + TR_SUBMIT, TR_BODY, None, None),
        "runcomfy POST submit": ("POST", url + RC_SUBMIT, RC_BODY, None, None),
        "dashscope POST submit": ("POST", url + DS_SUBMIT, DS_BODY, None, DS_HEADERS),
    }


def measure(names: list[str], seconds: float, rounds: int) -> dict[str, dict[str, Any]]:
    binary = ensure_wrk()
    servers: dict[str, Server] = {}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for name in names:
            servers[name] = Server(*SERVERS[name])
        plans = {name: targets(server) for name, server in servers.items()}
        for endpoint in plans[names[0]]:
            for _ in range(rounds):
                for name in names:
                    method, url, body, paths, headers = plans[name][endpoint]
                    wrk(binary, url, 1, method, body, paths, headers)  # warm-up
                    runs.setdefault(endpoint, {}).setdefault(name, []).append(
                        wrk(binary, url, seconds, method, body, paths, headers))
    finally:
        for server in servers.values():
            server.stop()
    return {endpoint: {name: {key: statistics.median(r[key] for r in results)
                              for key in results[0]} for name, results in by_server.items()}
            for endpoint, by_server in runs.items()}


class Redis:
    """A redis-server on a unix socket in a temp dir (persistence off), for ``--scale-out``."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="wanmock-bench-")
        self.socket = f"{self.dir}/redis.sock"
        self.url = f"unix://{self.socket}"
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)

    def info(self) -> dict[str, float]:
        """Commands served so far (all, and EVALSHA) and Redis CPU seconds."""
        out = subprocess.run(["redis-cli", "-s", self.socket, "info", "all"],
                             capture_output=True, text=True, check=True).stdout
        calls = [int(n) for n in re.findall(r"^cmdstat_\w+:calls=(\d+)", out, re.M)]
        evalsha = re.search(r"^cmdstat_evalsha:calls=(\d+)", out, re.M)
        cpu = sum(float(x) for x in re.findall(r"^used_cpu_(?:sys|user):([\d.]+)", out, re.M))
        return {"commands": sum(calls), "evalsha": int(evalsha.group(1)) if evalsha else 0,
                "cpu": cpu}

    def ceiling(self) -> float:
        """``redis-benchmark``'s GET requests/s here (one connection per client, no pipeline)."""
        out = subprocess.run(["redis-benchmark", "-s", self.socket, "-q", "-n", "100000",
                              "-c", "50", "-t", "get"], capture_output=True, text=True,
                             check=False).stdout
        found = re.search(r"GET: ([\d.]+) requests per second", out)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


#: The scale-out trio: name -> extra ``wanmock serve`` flags ({redis}: the Redis URL).
SCALE_OUT = {
    "memory-1w": [],
    "redis-1w": ["--state", "{redis}", "--namespace", "bench1"],
    "redis-2w": ["--state", "{redis}", "--namespace", "bench2", "--workers", "2"],
}
SCALE_CONFIG = '[server]\nseed = 1\n[lifecycle]\nrun_time = "fixed(1e9)"\n'


def scale_out(seconds: float, rounds: int) -> dict[str, Any]:
    binary = ensure_wrk()
    redis = Redis()
    config = Path(redis.dir) / "bench.toml"
    config.write_text(SCALE_CONFIG)
    servers: dict[str, Server] = {}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for name, flags in SCALE_OUT.items():
            command = [sys.executable, "-m", "wanmock.server", "serve", "--config", str(config),
                       *[f.format(redis=redis.url) for f in flags]]
            servers[name] = Server(command, "")
        plans = {name: targets(server) for name, server in servers.items()}
        endpoints = ["therouter GET poll", f"therouter GET poll {MANY} jobs",
                     "therouter POST submit"]
        for endpoint in endpoints:
            for _ in range(rounds):
                for name, server in servers.items():
                    method, url, body, paths = plans[name][endpoint]
                    wrk(binary, url, 1, method, body, paths)  # warm-up
                    before, cpu = redis.info(), _cpu_seconds(server.process.pid)
                    result = wrk(binary, url, seconds, method, body, paths)
                    after, cpu_after = redis.info(), _cpu_seconds(server.process.pid)
                    done = max(1, result["requests"])
                    result["worker_cpu_us"] = (cpu_after - cpu) / done * 1e6
                    if name != "memory-1w":
                        result["redis_commands"] = (after["commands"] - before["commands"]
                                                    - 1) / done  # -1: the INFO itself
                        result["redis_evalsha"] = (after["evalsha"] - before["evalsha"]) / done
                        result["redis_cpu_us"] = (after["cpu"] - before["cpu"]) / done * 1e6
                    runs.setdefault(endpoint, {}).setdefault(name, []).append(result)
        ceiling = redis.ceiling()
    finally:
        for server in servers.values():
            server.stop()
        redis.stop()
    results: dict[str, Any] = {
        endpoint: {name: {key: statistics.median(r.get(key, 0.0) for r in results)
                          for key in results[0]} for name, results in by_server.items()}
        for endpoint, by_server in runs.items()}
    results["redis-benchmark GET ceiling (req/s)"] = ceiling
    return results


def print_scale_out(results: dict[str, Any], seconds: float, rounds: int) -> None:
    print(f"wanmock serve, wrk -t1 -c64, median of {rounds} turns of {seconds:g} s; ratios: "
          "req/s over memory-1w of the same run")
    print(f"{'endpoint':<30} {'server':<10} {'req/s':>8} {'÷mem':>5} {'p99 ms':>7} "
          f"{'worker µs':>9} {'redis µs':>8} {'cmds/req':>8} {'evalsha/req':>11}")
    for endpoint, by_server in results.items():
        if not isinstance(by_server, dict):
            continue
        base = by_server["memory-1w"]["rps"]
        for name, r in by_server.items():
            print(f"{endpoint:<30} {name:<10} {r['rps']:>8.0f} {r['rps'] / base:>5.2f} "
                  f"{r['p99_ms']:>7.2f} {r['worker_cpu_us']:>9.0f} "
                  f"{r.get('redis_cpu_us', 0):>8.0f} {r.get('redis_commands', 0):>8.2f} "
                  f"{r.get('redis_evalsha', 0):>11.2f}"
                  + (f"  ({r['non_2xx']:.0f} non-2xx)" if r["non_2xx"] else ""))
    print(f"redis-benchmark GET ceiling here: {results['redis-benchmark GET ceiling (req/s)']:.0f}"
          " req/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="turns per server and endpoint")
    parser.add_argument("--only", help="comma-separated servers (raw and starlette always run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--scale-out", action="store_true",
                        help="memory vs Redis state, 1 and 2 workers (see the module docstring)")
    args = parser.parse_args()
    if args.scale_out:
        found = scale_out(args.seconds, args.rounds)
        if args.json:
            print(json.dumps(found, indent=2))
        else:
            print_scale_out(found, args.seconds, args.rounds)
        return
    names = list(SERVERS)
    if args.only:
        wanted = {"raw", "starlette", *args.only.split(",")}
        names = [n for n in names if n in wanted]
    results = measure(names, args.seconds, args.rounds)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"wrk -t1 -c64, median of {args.rounds} turns of {args.seconds:g} s; ratios: req/s "
          "over (b) raw ASGI and (c) bare Starlette, both on uvicorn")
    print(f"{'endpoint':<28} {'server':<15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'÷raw':>6} {'÷starlette':>10} {'p99÷raw':>8}")
    for endpoint, by_server in results.items():
        raw, bare = by_server["raw"], by_server["starlette"]
        for name, r in by_server.items():
            print(f"{endpoint:<28} {name:<15} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} "
                  f"{r['p99_ms']:>8.2f} {r['rps'] / raw['rps']:>6.2f} "
                  f"{r['rps'] / bare['rps']:>10.2f} {r['p99_ms'] / raw['p99_ms']:>8.2f}"
                  + (f"  ({r['non_2xx']:.0f} non-2xx)" if r["non_2xx"] else ""))


if __name__ == "__main__":
    main()
