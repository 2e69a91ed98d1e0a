"""Whole-server benchmark: the fake vs the raw-ASGI limit vs bare Starlette, in one run.

Each server runs under the same uvicorn settings (one worker, httptools + uvloop when installed,
access log off) on a free loopback port; ``wrk -t1 -c64`` drives it for ``--seconds`` per
endpoint. Results are requests/s and p50/p99, reported as ratios to the raw-ASGI limit (b) and to
bare Starlette (c) measured in the same run. Installs Debian's ``wrk`` if it is missing.

    python benchmarks/server.py [--seconds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVERS = {"raw": "benchmarks.apps:raw", "starlette": "benchmarks.apps:starlette",
           "fake": "benchmarks.apps:fake", "fake-nojournal": "benchmarks.apps:fake_nojournal"}
TR_BODY = '{"model": "wan/wan2.2-t2i-flash", "prompt": "a lighthouse at dusk"}'
RC_BODY = '{"prompt": "a lighthouse at dusk"}'


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
    def __init__(self, factory: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
             "--port", str(self.port), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/__ping", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"{factory} did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def wrk(binary: str, url: str, seconds: float, method: str = "GET", body: str = "") -> dict:  # type: ignore[type-arg]
    script = ""
    headers = 'wrk.headers["Authorization"] = "Bearer bench-key"\n'
    if method == "POST":
        script = (f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                  'wrk.headers["Content-Type"] = "application/json"\n')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(headers + script)
    out = subprocess.run([binary, "-t1", "-c64", f"-d{seconds:g}s", "--latency", "-s",
                          handle.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": _ms(lat.get("50", "0ms")), "p99_ms": _ms(lat.get("99", "0ms")),
            "non_2xx": int(errors.group(1)) if errors else 0}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def endpoints(server: Server) -> dict[str, tuple[str, str, str]]:
    """name -> (method, url, body). Poll targets are real jobs on the fake."""
    headers = {"authorization": "Bearer bench-key"}
    tr = httpx.post(server.url + "/v1/images/generations?async=true", content=TR_BODY,
                    headers={**headers, "content-type": "application/json"})
    rc = httpx.post(server.url + "/v1/models/wan-ai/wan-2-2/flash/text-to-image",
                    content=RC_BODY, headers={**headers, "content-type": "application/json"})
    tr_id = tr.json().get("id", "img_00000000000000000000000000")
    rc_id = rc.json().get("request_id", "00000000-0000-4000-8000-000000000000")
    return {
        "therouter GET poll": ("GET", f"{server.url}/v1/jobs/{tr_id}", ""),
        "runcomfy GET poll": ("GET", f"{server.url}/v1/requests/{rc_id}/status", ""),
        "therouter POST submit": ("POST", f"{server.url}/v1/images/generations?async=true",
                                  TR_BODY),
        "runcomfy POST submit": ("POST",
                                 f"{server.url}/v1/models/wan-ai/wan-2-2/flash/text-to-image",
                                 RC_BODY),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    binary = ensure_wrk()
    results: dict[str, dict[str, dict]] = {}  # type: ignore[type-arg]
    for name, factory in SERVERS.items():
        server = Server(factory)
        try:
            for endpoint, (method, url, body) in endpoints(server).items():
                wrk(binary, url, 1, method, body)  # warm-up
                results.setdefault(endpoint, {})[name] = wrk(binary, url, args.seconds, method,
                                                             body)
        finally:
            server.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"wrk -t1 -c64, {args.seconds:g} s per endpoint; ratios are req/s of the fake over "
          "(b) raw ASGI and (c) bare Starlette")
    print(f"{'endpoint':<22} {'server':<15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'÷raw':>6} {'÷starlette':>10} {'p99÷raw':>8}")
    for endpoint, by_server in results.items():
        raw, bare = by_server["raw"], by_server["starlette"]
        for name, r in by_server.items():
            print(f"{endpoint:<22} {name:<15} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} "
                  f"{r['p99_ms']:>8.2f} {r['rps'] / raw['rps']:>6.2f} "
                  f"{r['rps'] / bare['rps']:>10.2f} {r['p99_ms'] / raw['p99_ms']:>8.2f}"
                  + (f"  ({r['non_2xx']} non-2xx)" if r["non_2xx"] else ""))


if __name__ == "__main__":
    main()
