"""How a job record is kept in Redis: its immutable part as compact JSON (``d``); its start, end
and cancel times apart (they change), as Python ``repr`` strings; a slotted job's seq apart (the
queue gives it inside the create script).

>>> from wanmock.server.lifecycle import JobRequest, Stuck
>>> req = JobRequest(model="m", prompt="a cat", width=8, height=8)
>>> job = JobRecord(id="j", provider="p", owner="o", request=req, created_at=0.0,
...                 start_at=1.0, end_at=2.0, expires_at=3.0, evict_at=4.0, schedule=Stuck(2))
>>> decode_record(encode_record(job), "1.0", "2.0", "") == job
True
>>> import dataclasses
>>> partial = dataclasses.replace(job, request=dataclasses.replace(req, n=3), failed_images=2)
>>> decode_record(encode_record(partial), "1.0", "2.0", "").failed_images
2
"""

from __future__ import annotations

import json
from typing import Any

from ..lifecycle import (
    Backlog,
    Failure,
    JobRecord,
    JobRequest,
    PollDriven,
    Schedule,
    Slotted,
    Stuck,
)
from ..vocab import FailureKind

__all__ = ["decode_record", "encode_record"]


def _schedule(value: list[Any]) -> Schedule:
    tag = value[0]
    if tag == "slotted":
        return Slotted(value[1], value[2])
    if tag == "backlog":
        return Backlog(value[1], value[2])
    if tag == "stuck":
        return Stuck(value[1])
    return PollDriven(value[1])


def _schedule_value(schedule: Schedule) -> list[Any]:
    if isinstance(schedule, Slotted):
        return ["slotted", schedule.queue, schedule.seq]
    if isinstance(schedule, Backlog):
        return ["backlog", schedule.ahead, schedule.drain]
    if isinstance(schedule, Stuck):
        return ["stuck", schedule.ahead]
    return ["polls", schedule.polls]


def encode_record(record: JobRecord) -> str:
    """The immutable part of a record as compact JSON (start, end and cancel are kept apart)."""
    r = record.request
    failure = [record.failure.kind.value, record.failure.message] if record.failure else None
    return json.dumps(
        [record.id, record.provider, record.owner,
         [r.model, r.prompt, r.width, r.height, r.n, r.seed, r.negative_prompt, r.prompt_extend,
          r.params.decode(), list(r.prompt_path)],
         record.created_at, record.expires_at, record.evict_at, _schedule_value(record.schedule),
         failure, record.scenario, record.seed, record.failed_images],
        separators=(",", ":"), ensure_ascii=False)


def decode_record(data: str | bytes, start: str | bytes, end: str | bytes,
                  cancelled: str | bytes, seq: str | bytes = b"") -> JobRecord:
    """A record from its stored fields (see :func:`encode_record`; a slotted job's seq is the
    queue's, kept apart)."""
    (job_id, provider, owner, r, created, expires, evict, schedule, failure, scenario,
     seed, *more) = json.loads(data)
    failed_images = more[0] if more else 0  # kept before partial failures existed: none
    if seq:
        schedule[2] = int(seq)
    request = JobRequest(model=r[0], prompt=r[1], width=r[2], height=r[3], n=r[4], seed=r[5],
                         negative_prompt=r[6], prompt_extend=r[7], params=r[8].encode(),
                         prompt_path=tuple(r[9]))
    return JobRecord(
        id=job_id, provider=provider, owner=owner, request=request, created_at=created,
        start_at=float(start), end_at=float(end), expires_at=expires, evict_at=evict,
        schedule=_schedule(schedule),
        failure=Failure(FailureKind(failure[0]), failure[1]) if failure else None,
        cancelled_at=float(cancelled) if cancelled else None, scenario=scenario, seed=seed,
        failed_images=failed_images)
