"""What one metrics scrape costs as the fleet grows: snapshot time at 1k, 10k and 100k jobs (a
journal past its capacity each time), as a ratio to the 1k baseline measured in the same run.

    .venv/bin/python benchmarks/observe.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.web.fleet import fleet
from wanmock.server.state import at_once
from wanmock.server.web.metrics import render
from wanmock.server.web.observe import snapshot

SIZES = (1_000, 10_000, 100_000)
ROUNDS = 200


def main() -> None:
    baseline = None
    for jobs in SIZES:
        rt = fleet(jobs)
        at_once(snapshot(rt))
        began = time.perf_counter()
        for _ in range(ROUNDS):
            render(at_once(snapshot(rt))[0])
        per = (time.perf_counter() - began) / ROUNDS
        baseline = baseline or per
        print(f"{jobs:>7} jobs: {per * 1000:6.3f} ms per scrape (snapshot + Prometheus text), "
              f"x{per / baseline:.2f} the 1k baseline")


if __name__ == "__main__":
    main()
