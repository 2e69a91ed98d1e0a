"""Bytes per retained job, measured with tracemalloc, and poll cost as the job count grows.

    python benchmarks/memory.py [--jobs 1000000]

Jobs come from 1000 keys, with the seed's prompt, through the engine (the store, the queues and
the records — what a long load run retains). The poll cost is reported as a ratio to the 1k
baseline of the same run: flat means ~1.0.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc

from wanmock.server.clock import FakeClock
from wanmock.server.config import LifecycleConfig
from wanmock.server.dialects import RunComfy, SubmitInput
from wanmock.server.distributions import Fixed, Uniform
from wanmock.server.engine import Engine
from wanmock.server.state import MemoryState, at_once
from wanmock.server.web.runtime import owner_of

PROMPT = ("Cyberpunk alley in heavy rain, neon signs reflecting on wet asphalt, dramatic rim "
          "light, crisp details, 16 by 9")


def build(jobs: int) -> tuple[Engine, list[tuple[str, str]], float]:
    config = LifecycleConfig(run_time=Uniform(30, 180), queue_delay=Fixed(1), concurrency=2)
    engine = Engine(MemoryState(FakeClock(), seed=42))
    counter = iter(range(10**9))
    ids = []
    dialect = RunComfy()
    owners = [owner_of(f"key-{k}") for k in range(1000)]
    model = {"model_id": "wan-ai/wan-2-2/flash/text-to-image"}
    for i in range(jobs):
        # what a real submit stores: parsed, defaulted, the body kept (a unique prompt each)
        request = dialect.parse_submit(SubmitInput({"prompt": f"{PROMPT} #{i}"}, model))
        _, view = at_once(engine.submit(
            provider="runcomfy", owner=owners[i % 1000], request=request, retention=10**9,
            now=i * 0.5, plan=engine.plan(config), lifecycle=config,
            make_id=lambda rng, tag: f"{next(counter):08x}-0000-4000-8000-{0:012x}"))
        assert view is not None
        if i % 100 == 0:  # a sample to poll; keeping every id would inflate the measurement
            ids.append((view.id, view.record.owner))
    return engine, ids, jobs * 0.5


def poll_cost(engine: Engine, ids: list[tuple[str, str]], now: float) -> float:
    rng = random.Random(1)
    sample = [ids[rng.randrange(len(ids))] for _ in range(20_000)]
    begin = time.perf_counter()
    for job, owner in sample:
        at_once(engine.lookup("runcomfy", job, owner, now))
    return (time.perf_counter() - begin) / len(sample) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    args = parser.parse_args()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine, ids, now = build(args.jobs)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_job = used / args.jobs
    prompt = len(PROMPT) + 49 + 8  # a str object of that many ASCII characters
    print(f"{args.jobs} retained jobs: {used / 2**20:.0f} MiB, {per_job:.0f} bytes per job "
          f"including its ~{len(PROMPT) + 8}-character prompt; {per_job - prompt:.0f} bytes of "
          "bookkeeping (target: <= 1024 per job)")
    small, small_ids, small_now = build(1_000)
    base = poll_cost(small, small_ids, small_now)
    cost = poll_cost(engine, ids, now)
    print(f"poll state cost: {base:.2f} us at 1k jobs, {cost:.2f} us at {args.jobs} "
          f"(ratio {cost / base:.2f}; flat = 1.0)")


if __name__ == "__main__":
    main()
