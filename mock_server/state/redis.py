"""Simulation state in Redis: every worker and host using one Redis namespace is one fake.

Each :class:`~wanmock.server.state.base.SimState` operation is one Lua script (``redis_lua.py``):
atomic, and one round trip — a poll is one ``EVALSHA`` (gate + job + its queue position), a
submit is one (gate + eviction + budget + FIFO admission + store). The FIFO arithmetic is
:class:`~wanmock.server.scheduler.FifoQueue`'s, written in Lua over a queue kept in Redis (a
sorted set of waiting jobs: admitting one is O(log n)); the conformance suite and a twin state
machine hold the two implementations together.

Shared through Redis: jobs, queues, scripted responses, rate windows, the preset, the journal (a
Stream, written in batches), the clock's anchor (a real clock's origin and scale, or a fake
clock's time) and the identity (id tag, signing secret). Redis unreachable or slow: every
operation raises :class:`~wanmock.server.errors.StateUnavailable` within the socket timeout
(the provider's 503 with ``Retry-After: 1``), and the connection pool reconnects by itself.

>>> RedisState.key_prefix("team-a")
'wm:{team-a}:'
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import redis
import redis.asyncio as aioredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..clock import Clock, FakeClock, RealClock
from ..config import Config
from ..errors import ConfigError, StateUnavailable
from ..faults import Passage, ScriptedFault, bucket_of
from ..ids import tag_of
from ..journal import Journal, Request
from ..lifecycle import (
    JobRecord,
    PollDriven,
    Slotted,
    next_change,
    state_at,
)
from ..vocab import FaultKind, Operation, Phase
from . import redis_lua
from .base import (
    Admission,
    Census,
    Created,
    Gate,
    Identity,
    Page,
    Read,
    Stored,
    kept_bytes,
    listed,
)
from .redis_codec import decode_record, encode_record
from .redis_journal import StreamJournal
from .redis_lane import Lane, ReplyError

__all__ = ["RedisState", "SharedFakeClock"]

log = logging.getLogger("wanmock")

_OPEN = Passage()
_SCRIPTS = ("READ", "CREATE", "CANCEL", "QUEUE_STATS", "COUNT_POLL", "SET_IF", "LIST")
_LUA = {name: getattr(redis_lua, name) for name in _SCRIPTS}
_SHA = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in _LUA.items()}
_NO_GATE = ("0", "", "", "", "", "", "", "")
#: Seconds a worker trusts its copy of the preset before reading it again (real clock only).
PRESET_TTL = 0.5
#: Socket timeouts unless the URL says otherwise (``?socket_timeout=0.3``): a request waits at
#: most this long for Redis before answering 503.
SOCKET_TIMEOUT = 1.0


@contextlib.contextmanager
def _guard() -> Any:
    """Redis unreachable, slow or loading → :class:`StateUnavailable` (a provider 503)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StateUnavailable(f"the shared state (Redis) is unavailable: "
                               f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def _f(value: float) -> str:
    return repr(float(value))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedFakeClock(FakeClock):
    """A fake clock whose time is kept in Redis: an advance through any worker moves every
    worker (each reads the time again at the start of a request: :meth:`RedisState.preset`)."""

    def __init__(self, state: RedisState, start: float) -> None:
        super().__init__(start)
        self._state = state

    async def move(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"a fake clock cannot go backwards: advance({seconds!r})")
        self.jump_to(await self._state._advance_clock(seconds))


class RedisState:
    """Every piece of simulation state in one Redis namespace (see :mod:`.base`)."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "wanmock",
        fake_clock: bool = False,
        time_scale: float = 1.0,
        clock: Clock | None = None,
        seed: int | None = None,
        signing_key: bytes | None = None,
        max_jobs: int = 2_000_000,
        journal: Journal | None = None,
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.prefix = self.key_prefix(namespace)
        self.max_jobs = max_jobs
        options = self._options(url)
        self._options_ = options
        with _guard():
            sync = redis.Redis.from_url(url, **options)
            try:
                self.identity = self._identity(sync, signing_key)
                self.clock = clock or self._clock(sync, fake_clock, time_scale)
                worker = int(sync.incr(self.prefix + "workers"))
            finally:
                sync.close()
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        #: This worker's generator: its own sequence (worker numbers are never reused), so
        #: workers and restarts never draw each other's ids.
        self.rng = random.Random(f"{self.seed}:{worker}")
        self.worker = worker
        self._log = StreamJournal(self.prefix, journal or Journal(), self._redis)
        self._client: aioredis.Redis | None = None
        self._lane: Lane | None = None
        self._follower: asyncio.Task[None] | None = None
        self._records: dict[str, tuple[bytes, bytes, bytes, bytes, bytes, JobRecord]] = {}
        self._preset = ""
        self._preset_at = -math.inf

    # -- construction -------------------------------------------------------------------------

    @staticmethod
    def key_prefix(namespace: str) -> str:
        """Every key of a namespace starts with this (hash-tagged: one Cluster slot)."""
        return f"wm:{{{namespace}}}:"

    @classmethod
    def from_config(cls, config: Config, *, journal: Journal | None = None) -> RedisState:
        """The state ``config.server`` describes (``state``, ``namespace``, clock, seed)."""
        server = config.server
        return cls(server.state, namespace=server.namespace, fake_clock=server.fake_clock,
                   time_scale=server.time_scale, seed=server.seed,
                   signing_key=server.signing_key.encode() if server.signing_key else None,
                   max_jobs=config.lifecycle.max_jobs, journal=journal)

    @staticmethod
    def _options(url: str) -> dict[str, Any]:
        given = {name for name, _ in parse_qsl(urlsplit(url).query)}
        options: dict[str, Any] = {}
        for name in ("socket_timeout", "socket_connect_timeout"):
            if name not in given:
                options[name] = SOCKET_TIMEOUT
        return options

    def _identity(self, sync: redis.Redis, signing_key: bytes | None) -> Identity:
        key = self.prefix + "identity"
        fresh = json.dumps({"tag": os.urandom(8).hex(), "secret": os.urandom(32).hex(),
                            "incarnation": os.urandom(8).hex()})
        sync.set(key, fresh, nx=True)
        stored = json.loads(sync.get(key))  # type: ignore[arg-type]
        return Identity(tag=tag_of(f"redis:{stored['tag']}"),
                        secret=signing_key or bytes.fromhex(stored["secret"]),
                        incarnation=stored["incarnation"])

    def _clock(self, sync: redis.Redis, fake: bool, scale: float) -> Clock:
        from ..clock import DEFAULT_EPOCH

        key = self.prefix + "clock"
        mode = "fake" if fake else f"real x{scale:g}"
        anchor = json.dumps({"mode": mode, "scale": scale, "sim": time.time(),
                             "wall": time.time()})
        sync.set(key, anchor, nx=True)
        stored = json.loads(sync.get(key))  # type: ignore[arg-type]
        if stored["mode"] != mode:
            raise ConfigError(
                f"namespace {self.namespace!r} runs with a {stored['mode']} clock, this worker "
                f"asked for a {mode} clock: start every worker with the same --fake-clock / "
                "--time-scale, or use another --namespace")
        if fake:
            sync.set(self.prefix + "now", _f(DEFAULT_EPOCH), nx=True)
            return SharedFakeClock(self, float(sync.get(self.prefix + "now")))  # type: ignore[arg-type]
        now = stored["sim"] + (time.time() - stored["wall"]) * stored["scale"]
        return RealClock(stored["scale"], start=now)

    def _redis(self) -> aioredis.Redis:
        client = self._client
        if client is None:
            client = self._client = aioredis.Redis.from_url(self.url, **self._options_)
            options = parse_url(self.url)  # type: ignore[no-untyped-call]
            self._lane = Lane(
                self.url,
                timeout=float(options.get("socket_timeout") or SOCKET_TIMEOUT),
                connect_timeout=float(options.get("socket_connect_timeout") or SOCKET_TIMEOUT))
            if isinstance(self.clock, SharedFakeClock):
                self._follower = asyncio.get_running_loop().create_task(self._follow_clock())
        return client

    async def _follow_clock(self) -> None:
        """Wake this worker's waiters (sync-mode submits, delays) when another worker moves the
        shared fake clock: it publishes the new time."""
        assert isinstance(self.clock, SharedFakeClock) and self._client is not None
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.prefix + "clock")
                    now = await self._client.get(self.prefix + "now")  # moved before that?
                    if now is not None:
                        self.clock.jump_to(float(now))
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                           timeout=None)
                        if message is not None:
                            self.clock.jump_to(float(message["data"]))
            except (RedisError, OSError):
                await asyncio.sleep(1.0)  # Redis away: follow again once it is back

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One script, by its digest on the pipelined lane (loaded first if Redis lost it)."""
        self._redis()
        lane = self._lane
        assert lane is not None
        with _guard():
            try:
                return await lane.call("EVALSHA", _SHA[script], len(keys), *keys, *args)
            except ReplyError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                await lane.call("SCRIPT", "LOAD", _LUA[script])
                return await lane.call("EVALSHA", _SHA[script], len(keys), *keys, *args)

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _queue_key(self, name: str) -> str:
        return f"{self.prefix}q:{name}"

    # -- gate ---------------------------------------------------------------------------------

    @staticmethod
    def _gate(gate: Gate | None, now: float) -> Sequence[str]:
        if gate is None:
            return _NO_GATE
        limit = gate.limit
        if limit is None or not gate.key:
            return ("1", gate.provider, gate.operation.value, "", gate.key, "", "", "")
        start = float(math.floor(now / limit.window) * limit.window)
        return ("1", gate.provider, gate.operation.value, bucket_of(gate.operation), gate.key,
                str(limit.requests), _f(start), _f(start + limit.window - now))

    @staticmethod
    def _passage(script: bytes | None, wait: bytes | None) -> Passage:
        if script is None and wait is None:
            return _OPEN
        fault = None
        if script is not None:
            name, retry_after, _ = script.decode().split("|")
            fault = ScriptedFault(FaultKind(name), float(retry_after))
        return Passage(fault, float(wait) if wait is not None else None)

    async def passage(self, gate: Gate, now: float) -> Passage:
        found = await self._run("READ", [self._job_key("")], [self.prefix, _f(now),
                                                              *self._gate(gate, now)])
        return self._passage(found[0], found[1])

    # -- jobs ---------------------------------------------------------------------------------

    def _record(self, job_id: str, data: bytes, start: bytes, end: bytes, cancelled: bytes,
                seq: bytes) -> JobRecord:
        """The record of these fields (decoded once per change: kept per job)."""
        kept = self._records.get(job_id)
        if (kept is not None and kept[0] == data and kept[1] == start and kept[2] == end
                and kept[3] == cancelled and kept[4] == seq):
            return kept[5]
        record = decode_record(data, start, end, cancelled, seq)
        if len(self._records) >= 16_384:
            self._records.clear()
        self._records[job_id] = (data, start, end, cancelled, seq, record)
        return record

    def _stored(self, job_id: str, fields: Sequence[Any], position: int | None = None
                ) -> Stored:
        """A stored job from its fields ``d s e c v sq``."""
        return Stored(self._record(job_id, fields[0], fields[1], fields[2], fields[3] or b"",
                                   fields[5] or b""), int(fields[4]), position)

    async def create(self, record: JobRecord, admission: Admission | None, now: float,
                     gate: Gate | None = None, budget: int | None = None) -> Created:
        schedule = record.schedule
        slotted = admission is not None
        if slotted:
            assert admission is not None
            schedule = Slotted(admission.queue, -1)  # the queue gives the seq
            record = dataclasses.replace(record, schedule=schedule)
        answer = await self._run("CREATE", [self._job_key(record.id)], [
            self.prefix, _f(now), *self._gate(gate, now),
            "" if budget is None else str(budget), record.owner, str(kept_bytes(record)),
            str(self.max_jobs), encode_record(record), _f(record.start_at), _f(record.end_at),
            _f(record.cancelled_at) if record.cancelled_at is not None else "",
            admission.queue if admission is not None else "",
            str(schedule.polls) if isinstance(schedule, PollDriven) else "",
            _f(record.expires_at), _f(record.evict_at),
            *((_f(admission.ready_at), _f(admission.run_seconds), str(admission.concurrency))
              if admission is not None else ("", "", "")), record.provider,
            "1" if record.failure is not None else ""])
        outcome = answer[0]
        passage = self._passage(answer[1], answer[2])
        if outcome == b"blocked":
            return Created(passage, None)
        if outcome == b"taken":
            return Created(passage, None, taken=True)
        if outcome == b"budget":
            return Created(passage, None, over_budget=True)
        position = None
        if admission is not None:
            record = dataclasses.replace(record, schedule=Slotted(admission.queue,
                                                                  int(answer[3])),
                                         start_at=float(answer[4]), end_at=float(answer[5]))
            position = answer[6]
        return Created(passage, Stored(record, 0, position))

    async def read(self, job_id: str, now: float, gate: Gate | None = None) -> Read:
        found = await self._run("READ", [self._job_key(job_id)],
                                [self.prefix, _f(now), *self._gate(gate, now)])
        passage = self._passage(found[0], found[1])
        if found[2] is None:
            return Read(passage, None)
        stored = self._stored(job_id, found[2:8])
        record = stored.record
        if (found[8] is not None and record.start_at > now and record.cancelled_at is None):
            return Read(passage, Stored(record, stored.version, found[8]))
        return Read(passage, stored)

    async def jobs_of(self, provider: str, owner: str, now: float, *, offset: int, limit: int,
                      since: float | None = None, until: float | None = None,
                      phases: frozenset[Phase] | None = None, model: str | None = None
                      ) -> Page:
        """One round trip: the owner's live jobs (an owner's set kept by the create and
        eviction scripts), filtered and paged here, as :class:`MemoryState` does."""
        found = await self._run("LIST", [f"{self.prefix}own:{provider}|{owner}"],
                                [self.prefix, _f(now)])
        page: list[Stored] = []
        total = 0
        for index in range(0, len(found), 8):
            row = found[index:index + 8]
            job_id = _text(row[0])
            stored = self._stored(job_id, row[1:7])
            record = stored.record
            if not listed(record, now, since=since, until=until, phases=phases, model=model):
                continue
            if offset <= total < offset + limit:
                if row[7] is not None and record.start_at > now and record.cancelled_at is None:
                    stored = Stored(record, stored.version, int(row[7]))
                page.append(stored)
            total += 1
        return Page(tuple(page), total)

    async def waiting(self, queue: str, now: float) -> int:
        found = await self._run("QUEUE_STATS", [self._queue_key(queue)],
                                [self.prefix, queue, _f(now)])
        return int(found[0]) if found is not None else 0

    async def cancel(self, job_id: str, version: int, now: float, *, queued: bool
                     ) -> Stored | None:
        found = await self._run("CANCEL", [self._job_key(job_id)],
                                [self.prefix, str(version), _f(now), "1" if queued else "0"])
        return self._stored(job_id, found) if found is not None else None

    async def count_poll(self, job_id: str, now: float) -> Stored | None:
        found = await self._run("COUNT_POLL", [self._job_key(job_id)], [self.prefix, _f(now)])
        return self._stored(job_id, found) if found is not None else None

    # -- scripts ------------------------------------------------------------------------------

    async def script(self, faults: Iterable[ScriptedFault], *, provider: str | None,
                     operation: Operation | None) -> int:
        scope = f"{provider or '*'}:{operation.value if operation else '*'}"
        items = [f"{f.fault.value}|{_f(f.retry_after)}|{int(f.fault.status is not None)}"
                 for f in faults]
        with _guard():
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.rpush(self.prefix + "script:" + scope, *items)
                pipe.sadd(self.prefix + "scopes", scope)
                count, _ = await pipe.execute()
        return int(count)

    async def scripted(self) -> dict[str, list[str]]:
        client = self._redis()
        with _guard():
            scopes = sorted(_text(s) for s in await client.smembers(self.prefix + "scopes"))
            found = {}
            for scope in scopes:
                items = await client.lrange(self.prefix + "script:" + scope, 0, -1)
                if items:
                    found[scope] = [_text(item).split("|")[0] for item in items]
        return found

    # -- settings -----------------------------------------------------------------------------

    async def preset(self) -> str:
        """The preset every worker follows. Also the moment a request brings this worker up to
        date with what the others share: a shared fake clock's time is read on every call; a
        real clock needs nothing, and the preset is read again every :data:`PRESET_TTL` s."""
        if isinstance(self.clock, SharedFakeClock):
            self._redis()
            assert self._lane is not None
            with _guard():
                preset, now = await self._lane.call("MGET", self.prefix + "preset",
                                                    self.prefix + "now")
            if now is not None:
                self.clock.jump_to(float(now))
            self._preset = _text(preset) if preset is not None else ""
            return self._preset
        if time.monotonic() - self._preset_at > PRESET_TTL:
            with _guard():
                preset = await self._redis().get(self.prefix + "preset")
            self._preset = _text(preset) if preset is not None else ""
            self._preset_at = time.monotonic()
        return self._preset

    async def set_preset(self, name: str) -> None:
        with _guard():
            await self._redis().set(self.prefix + "preset", name)
        self._preset, self._preset_at = name, time.monotonic()

    async def _advance_clock(self, seconds: float) -> float:
        key = self.prefix + "now"
        for _ in range(64):
            with _guard():
                current = await self._redis().get(key)
            old = _text(current) if current is not None else ""
            new = (float(old) if old else self.clock.now()) + seconds
            if await self._run("SET_IF", [key], [old, _f(new)]):
                with _guard():
                    await self._redis().publish(self.prefix + "clock", _f(new))
                return new
        raise StateUnavailable("the shared fake clock kept moving (64 tries)")

    # -- journal ------------------------------------------------------------------------------

    async def record(self, request: Request) -> None:
        self._log.record(request)

    async def journal(self) -> Journal:
        self._redis()
        with _guard():
            return await self._log.read()

    # -- the rest -----------------------------------------------------------------------------

    async def _jobs(self) -> AsyncIterator[JobRecord]:
        client = self._redis()
        with _guard():
            keys = [key async for key in client.scan_iter(match=self.prefix + "job:*",
                                                          count=1000)]
            for index in range(0, len(keys), 1000):
                async with client.pipeline(transaction=False) as pipe:
                    for key in keys[index:index + 1000]:
                        pipe.hmget(key, ["d", "s", "e", "c", "sq"])
                    rows = await pipe.execute()
                for d, s, e, c, seq in rows:
                    if d is not None:
                        yield decode_record(d, s, e, c or b"", seq or b"")

    async def census(self, now: float) -> Census:
        """Jobs by provider and phase, jobs submitted and finished, queue depths: bounded work
        whatever the number of jobs (the scripts keep each job's phase changes as
        ``state/census.py`` does: a count per first phase, sorted instants per kind of move)."""
        client = self._redis()
        queues = {}  # settled first: a settle may move jobs
        with _guard():
            names = sorted(_text(n) for n in await client.smembers(self.prefix + "queues"))
        for name in names:
            found = await self._run("QUEUE_STATS", [self._queue_key(name)],
                                    [self.prefix, name, _f(now)])
            if found is not None:
                queues[name] = (int(found[0]), int(found[1]))
        with _guard():
            async with client.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.prefix + "cf")
                pipe.smembers(self.prefix + "cmk")
                pipe.hgetall(self.prefix + "cgone")
                pipe.hgetall(self.prefix + "submitted")
                pipe.zcard(self.prefix + "order")
                first, kinds, gone, submitted, total = await pipe.execute()
            kinds = sorted(_text(kind) for kind in kinds)
            async with client.pipeline(transaction=False) as pipe:
                for kind in kinds:
                    pipe.zcount(self.prefix + "cm:" + kind, "-inf", _f(now))
                moved = await pipe.execute()
        jobs: dict[str, dict[Phase, int]] = {}
        finished: dict[str, dict[Phase, int]] = {}

        def count(into: dict[str, dict[Phase, int]], provider: str, phase: Phase, n: int,
                  zeros: bool) -> None:
            counts = into.setdefault(provider, dict.fromkeys(Phase, 0) if zeros else {})
            counts[phase] = counts.get(phase, 0) + n

        for key, n in first.items():
            provider, phase = _text(key).split("|")
            if int(n):
                count(jobs, provider, Phase(phase), int(n), True)
                if Phase(phase).terminal:
                    count(finished, provider, Phase(phase), int(n), False)
        for kind, n in zip(kinds, moved, strict=True):
            provider, before, after = kind.split("|")
            if n:
                count(jobs, provider, Phase(before), -n, True)
                count(jobs, provider, Phase(after), n, True)
                if Phase(after).terminal and not Phase(before).terminal:
                    count(finished, provider, Phase(after), n, False)
        for key, n in gone.items():
            provider, outcome = _text(key).split("|")
            if int(n):
                count(finished, provider, Phase(outcome), int(n), False)
        return Census(jobs, queues, int(total),
                      {_text(k): int(v) for k, v in submitted.items()}, finished)

    async def next_change(self, now: float) -> float | None:
        soonest = math.inf
        async for record in self._jobs():
            if not state_at(record, now).phase.terminal:
                soonest = min(soonest, next_change(record, now))
        return None if math.isinf(soonest) else soonest

    async def reset(self) -> None:
        client = self._redis()
        kept = {self.prefix + name for name in ("identity", "clock", "now", "workers", "jepoch")}
        self._log.forget()
        with _guard():
            keys = [key async for key in client.scan_iter(match=self.prefix + "*", count=1000)
                    if _text(key) not in kept]
            for index in range(0, len(keys), 1000):
                await client.unlink(*keys[index:index + 1000])
            await client.incr(self.prefix + "jepoch")
        self._records.clear()
        self._preset, self._preset_at = "", -math.inf

    async def evicted(self) -> int:
        """Records evicted so far, by every worker."""
        with _guard():
            count = await self._redis().get(self.prefix + "evicted")
        return int(count or 0)

    async def close(self) -> None:
        self._log.stop()
        await self._log.flush()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._follower
            self._follower = None
        if self._lane is not None:
            self._lane.close()
            self._lane = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
