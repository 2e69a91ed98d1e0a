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

    python benchmarks/server.py [--seconds 3] [--rounds 3] [--json] [--only fake,raw]
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
            [*command, "--host", "127.0.0.1", "--port", str(self.port), app],
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
    return {"rps": rps, "p50_ms": _ms(lat.get("50", "0ms")), "p99_ms": _ms(lat.get("99", "0ms")),
            "non_2xx": int(errors.group(1)) if errors else 0}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="turns per server and endpoint")
    parser.add_argument("--only", help="comma-separated servers (raw and starlette always run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
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
