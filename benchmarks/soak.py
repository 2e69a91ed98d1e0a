"""Soak: minutes of mixed submit / poll / cancel / download load against ``wanmock serve``, with
the server's resident memory sampled as it goes. Does memory plateau?

    python benchmarks/soak.py [--minutes 5] [--server uvicorn|granian] [--clients 16]
                              [--time-scale 1000] [--retention 3600] [--sample-every 30]

The server runs in a subprocess (``--time-scale 1000``: a 30-180 s job takes 30-180 ms), its RSS
is read from ``/proc/<pid>/status``. Each client is its own API key and loops: submit (both
providers in turn), cancel at once one job in five, else poll every 0.1 s until the job ends,
then fetch the result and, one job in ten, download an image.

Retention is shortened to ``--retention`` simulated seconds (default one hour, ~3.6 s real),
eviction likewise: with the providers' own (TheRouter keeps jobs 7 days + 1 day answering
"expired", 11.5 real minutes here) the store would rightly grow for the whole run. The journal
keeps 2000 requests and 1000 job summaries (defaults: 10 000 each, which at ~55 jobs/s take
over 3 minutes to fill: a first 2-minute run grew 65.6 -> 81.9 MB while they filled), status
answers of 1000 jobs (default 16 384, ~2 KB each) and 4 MiB of PNGs (default 32 MiB: a run with
the defaults grew 54 -> 148 MB in 5 minutes while these caches filled). So jobs, journal and caches
turn over within the first minute, and any growth after that is a leak.

**Plateau rule**: the peak RSS of the last third of the run exceeds the peak of the middle third
by at most 5% (and at least 5 MB is allowed). Peaks, not single samples: RSS swings by ~10 MB
between samples as images are drawn and freed, and a leak raises the peaks while noise does not.
Exit status 1 if it did not plateau.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from wanmock.contracts.drivers import DRIVERS, Driver
from wanmock.server.vocab import Phase

TERMINAL = {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED, Phase.EXPIRED}
SOAK_CONFIG = """\
[lifecycle]
evict_after = {retention}
[therouter]
retention = {retention}
[runcomfy]
retention = {retention}
[server]
memo_entries = 1000
image_cache_bytes = 4194304
[journal]
capacity = 2000
max_jobs = 1000
"""


@dataclass
class Tally:
    """What the clients did, and what went wrong."""

    requests: int = 0
    jobs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def count(self, response: httpx.Response) -> httpx.Response:
        self.requests += 1
        if response.status_code >= 500:
            self.errors[f"HTTP {response.status_code}"] += 1
        return response


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def start_server(args: argparse.Namespace, config: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "wanmock.server", "serve", "--port", "0", "--server", args.server,
         "--time-scale", str(args.time_scale), "--seed", "1", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
    assert process.stdout is not None
    base = process.stdout.readline().split()[3]
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/__admin/health", timeout=2)
            return process, base
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"wanmock serve --server {args.server} did not start") from None
            time.sleep(0.1)


async def client(index: int, base: str, stop_at: float, tally: Tally) -> None:
    rng = random.Random(index)
    limits = httpx.Limits(max_connections=2)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits,
                                 headers={"authorization": f"Bearer soak-{index}"}) as http:
        drivers: list[Driver] = [DRIVERS[name](http) for name in sorted(DRIVERS)]
        turn = index
        while time.monotonic() < stop_at:
            driver = drivers[turn % len(drivers)]
            turn += 1
            try:
                await one_job(driver, rng, stop_at, tally)
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5)


async def one_job(driver: Driver, rng: random.Random, stop_at: float, tally: Tally) -> None:
    submitted = tally.count(await driver.submit())
    if submitted.status_code >= 300:
        tally.outcomes[f"submit {submitted.status_code}"] += 1
        await asyncio.sleep(0.5)
        return
    tally.jobs += 1
    job = driver.job_id(submitted)
    if rng.random() < 0.2:  # usually too late at x1000: the job left the queue in ~2 ms
        cancelled = tally.count(await driver.cancel(job))
        tally.outcomes[f"cancel {cancelled.status_code}"] += 1
    while time.monotonic() < stop_at:
        polled = tally.count(await driver.status(job))
        if polled.status_code != 200:
            tally.outcomes[f"poll {polled.status_code}"] += 1
            return
        phase = driver.phase(polled)
        if phase in TERMINAL:
            tally.outcomes[phase.value] += 1
            break
        await asyncio.sleep(0.1)
    else:
        return
    if phase is Phase.SUCCEEDED:
        result = tally.count(await driver.result(job))
        if result.status_code == 200 and rng.random() < 0.1:
            for url in driver.image_urls(result)[:1]:
                tally.count(await driver.http.get(url))


async def soak(args: argparse.Namespace, pid: int, base: str) -> list[tuple[float, float, int,
                                                                            Tally]]:
    tally = Tally()
    started = time.monotonic()
    stop_at = started + args.minutes * 60
    clients = [asyncio.create_task(client(i, base, stop_at, tally)) for i in range(args.clients)]
    samples = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        next_sample = started
        while True:
            now = time.monotonic()
            if now >= next_sample:
                jobs = (await admin.get("/__admin/health")).json().get("jobs", -1)
                sample = (now - started, rss_mb(pid), jobs, Tally(
                    tally.requests, tally.jobs, Counter(tally.outcomes), Counter(tally.errors)))
                samples.append(sample)
                print(render(sample), flush=True)
                next_sample += args.sample_every
            if now >= stop_at:
                break
            await asyncio.sleep(min(1.0, max(0.0, min(next_sample, stop_at) - now)))
    await asyncio.gather(*clients)
    return samples


def render(sample: tuple[float, float, int, Tally]) -> str:
    seconds, rss, jobs, tally = sample
    return (f"  {int(seconds) // 60:2d}:{int(seconds) % 60:02d}  RSS {rss:7.1f} MB  "
            f"jobs held {jobs:6d}  submitted {tally.jobs:7d}  requests {tally.requests:8d}  "
            f"errors {sum(tally.errors.values())}")


def plateaued(samples: list[tuple[float, float, int, Tally]]) -> tuple[bool, str]:
    """The plateau rule (see the module docstring) and the numbers behind the verdict."""
    if len(samples) < 4:
        return False, "too few samples: run longer or sample more often"
    end = samples[-1][0]
    middle = max(rss for at, rss, *_ in samples if end / 3 <= at < 2 * end / 3)
    last = max(rss for at, rss, *_ in samples if at >= 2 * end / 3)
    growth = last - middle
    allowed = max(5.0, 0.05 * middle)
    return growth <= allowed, (f"peak of the middle third {middle:.1f} MB, of the last third "
                               f"{last:.1f} MB ({growth:+.1f} MB; allowed {allowed:.1f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--time-scale", type=float, default=1000.0)
    parser.add_argument("--retention", type=float, default=3600.0,
                        help="simulated seconds jobs are kept, then answer 'expired' as long")
    parser.add_argument("--sample-every", type=float, default=30.0, metavar="S")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("soak.py reads the server's RSS from /proc (Linux only)")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "soak.toml")
        config.write_text(SOAK_CONFIG.format(retention=args.retention))
        process, base = start_server(args, config)
        try:
            print(f"soak: {args.clients} clients, {args.minutes:g} min against {args.server} at "
                  f"x{args.time_scale:g}, retention {args.retention:g} simulated s; "
                  f"RSS every {args.sample_every:g} s")
            samples = asyncio.run(soak(args, process.pid, base))
        finally:
            process.terminate()
            process.wait(timeout=15)
    ok, why = plateaued(samples)
    last = samples[-1][3]
    print(f"  outcomes: {dict(last.outcomes)}")
    print(f"  errors:   {dict(last.errors) or 'none'}")
    print(f"memory {'plateaued' if ok else 'did NOT plateau'}: {why}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
