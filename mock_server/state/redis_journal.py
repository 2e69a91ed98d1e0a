"""The journal of a Redis state: every worker's requests in one Redis stream.

A worker buffers the requests it answers and writes them a few milliseconds later as one stream
entry (a batch) plus a row count, atomically. Reading (``/__admin/journal`` on any worker) folds
every batch not yet folded by this worker into its :class:`~wanmock.server.journal.Journal`,
so summaries and tallies cover the whole fleet. Rows trimmed from the stream before this worker
read them, or never written (Redis was away), are counted as lost evidence (``dropped_jobs``,
``dropped_keys``): verdicts refuse to pass on them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..journal import Journal, Request
from ..vocab import Operation, Phase

__all__ = ["JOURNAL_STREAM_CAP", "StreamJournal"]

log = logging.getLogger("wanmock")

#: Batches the journal stream keeps (each holds the requests a worker answered in a few
#: milliseconds; older ones are trimmed).
JOURNAL_STREAM_CAP = 200_000
#: Real seconds a request waits in this worker's buffer, at most, before it is written.
BATCH_SECONDS = 0.005
_UNSET: Any = object()


class StreamJournal:
    """One worker's side of the shared journal under key prefix ``prefix``."""

    def __init__(self, prefix: str, journal: Journal,
                 client: Callable[[], aioredis.Redis]) -> None:
        self.prefix = prefix
        self.stream = prefix + "journal"
        self.folded_journal = journal
        self._client = client
        self._epoch: Any = _UNSET
        self._last_id = "0-0"
        self._folded = 0
        self._pending: list[str] = []
        self._flushing: asyncio.Task[None] | None = None
        #: Rows this worker could not write (Redis was away).
        self.lost = 0
        self._lost_counted = 0

    def record(self, request: Request) -> None:
        """Buffer one answered request (written within :data:`BATCH_SECONDS`)."""
        (provider, operation, method, path, job_id, key, status, sim_time, real_time,
         duration_ms, phase, fault, retry_after, violations, finished_at) = request
        op = operation.value if isinstance(operation, Operation) else operation
        self._pending.append(json.dumps(
            [provider, op, method, path, job_id, key, status, sim_time, real_time, duration_ms,
             phase.value if phase is not None else None, fault, retry_after, list(violations),
             finished_at], separators=(",", ":")))
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(BATCH_SECONDS)  # real time: one write per batch
        finally:
            self._flushing = None
        await self.flush()

    async def flush(self) -> None:
        """Write what is buffered (a failure is counted as lost rows, never raised)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            async with self._client().pipeline(transaction=True) as pipe:
                pipe.xadd(self.stream, {"r": "[" + ",".join(pending) + "]"},
                          maxlen=JOURNAL_STREAM_CAP, approximate=True)
                pipe.incrby(self.prefix + "jrows", len(pending))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.lost += len(pending)
            log.warning("wanmock: %d journal entries lost, Redis unavailable: %s",
                        len(pending), exc)

    async def read(self) -> Journal:
        """The fleet's journal: every batch written so far folded in (Redis errors raise)."""
        await self.flush()
        client = self._client()
        journal = self.folded_journal
        epoch, written = await client.mget([self.prefix + "jepoch", self.prefix + "jrows"])
        if epoch != self._epoch:  # reset through some worker
            journal.reset()
            self._epoch, self._last_id, self._folded = epoch, "0-0", 0
        while True:
            batches = await client.xrange(self.stream, min=f"({self._last_id}", count=1000)
            if not batches:
                break
            for _, fields in batches:
                for row in json.loads(fields[b"r"]):  # type: ignore[index]
                    _fold(journal, row)
                    self._folded += 1
            last = batches[-1][0]
            self._last_id = last.decode() if isinstance(last, bytes) else str(last)
        lost = max(0, int(written or 0) - self._folded) + self.lost - self._lost_counted
        if lost > 0:
            journal.dropped_jobs += lost
            journal.dropped_keys += lost
            self._folded = max(self._folded, int(written or 0))
            self._lost_counted = self.lost
        return journal

    def forget(self) -> None:
        """Drop what is buffered and what was folded (the state was reset)."""
        self.stop()
        self._pending.clear()
        self.folded_journal.reset()
        self._epoch = _UNSET

    def stop(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None


def _fold(journal: Journal, row: list[Any]) -> None:
    (provider, op, method, path, job_id, key, status, sim_time, real_time, duration_ms,
     phase, fault, retry_after, violations, finished_at) = row
    journal.add(Request(provider, op, method, path, job_id, key, status, sim_time, real_time,
                        duration_ms, Phase(phase) if phase else None, fault, retry_after,
                        tuple(violations), finished_at))
