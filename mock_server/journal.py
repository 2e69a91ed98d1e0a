"""The journal: every request the fake answered, and how each client treated each job.

Two kinds of memory, for two purposes:

* **For showing** — the most recent requests, in a ring buffer of ``capacity`` entries
  (``GET /__admin/journal``). It forgets; nothing is judged from it.
* **For judging** — summaries updated on every request that never lose evidence silently: per job
  (:class:`JobSummary`), per API key (:class:`KeySummary`) and fleet-wide tallies
  (:class:`Tally`: counts and histograms). Per-job and per-key summaries are bounded too
  (``max_jobs``, ``max_keys``, oldest out first); the journal counts what it evicted
  (``dropped_jobs``, ``dropped_keys``) so a verdict can refuse to pass on lost evidence.

Classification of each request, the vocabulary of every verdict:

* a **retry** — a request about a job (or, without a job, by a key) whose previous answer was an
  error (5xx, 429, a dropped, empty or corrupted body): a client's, or its HTTP library's,
  second try. Not a poll;
* a **poll** — any other status request;
* ``poll-after-terminal`` — a status request after the client was shown a terminal status (by
  an answer that reached it intact: a dropped, cut, malformed or empty body shows nothing);
* ``ignored-retry-after`` — a request sooner than a ``Retry-After`` this key was given;
* ``result-before-success`` — a result/content fetch before the job succeeded;
* ``poll-after-cancel`` — a status request after the client's own cancel was accepted.

Times are simulated seconds. Summaries keep the first :class:`Evidence` of each violation, so a
message can say where it happened.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from .vocab import FaultKind, Operation, Phase

__all__ = [
    "BUCKETS",
    "MAX_CLIENTS",
    "TOLERANCE",
    "WORST_CLIENTS",
    "Entry",
    "Evidence",
    "Histogram",
    "JobSummary",
    "Journal",
    "KeySummary",
    "Request",
    "Tally",
    "shorter",
]


#: Seconds by which a wait may fall short of a threshold and still count as meeting it:
#: simulated times are sums of floats, so waiting exactly 3.3 s can measure 3.2999999999999994;
#: a microsecond is far below anything a client could mean, and far above the rounding.
TOLERANCE = 1e-6


def shorter(waited: float, limit: float) -> bool:
    """Whether ``waited`` fell measurably short of ``limit`` (by more than :data:`TOLERANCE`)."""
    return waited < limit - TOLERANCE


#: Operation by name (members hash as their value, so a member finds itself too).
_OPERATIONS: dict[str, Operation] = {op.value: op for op in Operation}

POLL_AFTER_TERMINAL = "poll-after-terminal"
IGNORED_RETRY_AFTER = "ignored-retry-after"
RESULT_BEFORE_SUCCESS = "result-before-success"
POLL_AFTER_CANCEL = "poll-after-cancel"
RETRY = "retry"
#: Every client-behaviour violation a flag can name.
VIOLATIONS = (POLL_AFTER_TERMINAL, IGNORED_RETRY_AFTER, RESULT_BEFORE_SUCCESS, POLL_AFTER_CANCEL)

#: Simulated seconds within which two task-list requests are pages of one list.
_SAME_INSTANT = 1e-6

#: Faults after which the client saw no usable answer (its next request is a retry).
_BODY_FAULTS = frozenset({FaultKind.DROP, FaultKind.TRUNCATED_JSON, FaultKind.MALFORMED_JSON,
                          FaultKind.EMPTY_BODY, FaultKind.TIMEOUT})


class Entry(NamedTuple):
    """One answered request (a named tuple: the journal makes one per request)."""

    seq: int
    provider: str | None
    #: An :class:`~wanmock.server.vocab.Operation`'s value, or what the route was called.
    operation: str | None
    method: str
    path: str
    job_id: str | None
    #: Hash of the API key (never the key).
    key: str | None
    status: int
    #: Simulated time the request arrived, and real (wall-clock) time it was answered.
    sim_time: float
    real_time: float
    duration_ms: float
    #: The job's phase as the response showed it (a :class:`~wanmock.server.vocab.Phase` value).
    phase: str | None = None
    fault: str | None = None
    retry_after: float | None = None
    #: Request validation problems, as ``field: rule``.
    violations: tuple[str, ...] = ()
    #: Client-behaviour flags raised by this request (see the module docstring).
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class Request(NamedTuple):
    """One answered request as the server hands it to the journal (see :meth:`Journal.record`
    for the fields)."""

    provider: str | None
    operation: Operation | str | None
    method: str
    path: str
    job_id: str | None
    key: str | None
    status: int
    sim_time: float
    real_time: float
    duration_ms: float
    phase: Phase | None = None
    fault: str | None = None
    retry_after: float | None = None
    violations: tuple[str, ...] = ()
    finished_at: float | None = None


class Evidence(NamedTuple):
    """Where something happened: simulated time and a short description."""

    at: float
    detail: str


@dataclass(slots=True)
class JobSummary:
    """How clients treated one job (see the module docstring for the vocabulary)."""

    job_id: str
    provider: str | None
    key: str | None
    submitted_at: float | None = None
    last_request_at: float | None = None
    polls: int = 0
    retries: int = 0
    min_poll_interval: float | None = None
    fastest_poll: Evidence | None = None
    min_retry_gap: float | None = None
    fastest_retry: Evidence | None = None
    terminal_seen_at: float | None = None
    terminal_phase: str | None = None
    polls_after_terminal: int = 0
    first_poll_after_terminal: Evidence | None = None
    ignored_retry_after: int = 0
    first_ignored_retry_after: Evidence | None = None
    results_before_success: int = 0
    first_result_before_success: Evidence | None = None
    polls_after_cancel: int = 0
    result_fetches: int = 0
    downloads: int = 0
    faults: int = 0
    cancels: int = 0
    #: Consecutive cancels of the job (retries excluded) are judged like polls: a refused
    #: cancel sent again and again hammers the provider as a fast poller does.
    min_cancel_interval: float | None = None
    fastest_cancel: Evidence | None = None
    #: The last status request (poll or retry), the last error answer, an accepted cancel,
    #: the last cancel sent.
    last_status_at: float | None = None
    error_at: float | None = None
    cancelled_at: float | None = None
    last_cancel_at: float | None = None

    def offset(self, at: float) -> str:
        """``t+12.3 s``: simulated time as an offset from this job's submit."""
        return _offset(at, self.submitted_at)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in data.items():
            if isinstance(value, Evidence):
                data[name] = value._asdict()
        return data


@dataclass(slots=True)
class KeySummary:
    """How one API key (its owner hash) behaved, requests without a job included."""

    key: str
    requests: int = 0
    polls: int = 0
    retries: int = 0
    ignored_retry_after: int = 0
    first_ignored_retry_after: Evidence | None = None
    min_retry_gap: float | None = None
    fastest_retry: Evidence | None = None
    polls_after_terminal: int = 0
    results_before_success: int = 0
    #: ``Retry-After`` given to this key: no request before this simulated time.
    not_before: float | None = None
    #: The last error answer to a request of this key that addressed no job (a submit).
    error_at: float | None = None
    #: Task-list requests (not retries): listing is polling every job of the key at once, so
    #: consecutive lists are judged like polls. Pages fetched at one simulated instant are one
    #: list (time only moves when the client waits).
    lists: int = 0
    last_list_at: float | None = None
    min_list_interval: float | None = None
    fastest_list: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in data.items():
            if isinstance(value, Evidence):
                data[name] = value._asdict()
        return data


#: Upper bounds (simulated seconds, or counts for polls per job) of every histogram; the last
#: bucket (``+Inf``) is implicit. The metrics export these buckets as they are.
BUCKETS: Mapping[str, tuple[float, ...]] = {
    "polls_per_job": (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 144.0),
    "poll_interval": (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0),
    "notice_lag": (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0),
    "submit_to_download": (30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 600.0, 1200.0,
                           3600.0),
}
#: How many clients (provider, key hash) :attr:`Tally.worst` keeps: the most violations.
WORST_CLIENTS = 20
#: How many clients :attr:`Tally.clients` counts one by one (memory stays bounded whatever
#: number of keys misbehave); past it the oldest outside the worst are forgotten.
MAX_CLIENTS = 10_000


@dataclass(slots=True)
class Histogram:
    """Observations counted into fixed buckets (non-cumulative counts; the last is ``+Inf``)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1


@dataclass(slots=True)
class Tally:
    """Fleet-wide counts that never drop (for metrics and the dashboard)."""

    #: (provider, operation, status) -> requests.
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    #: (provider, fault, phase or "none") -> injected faults.
    faults: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (provider, violation) -> requests flagged.
    violations: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (provider, key) -> violations of that client, by kind.
    clients: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    #: The :data:`WORST_CLIENTS` clients with the most violations, kept as they happen (counts
    #: only grow, so this is exact while no more than :data:`MAX_CLIENTS` clients misbehave: a
    #: scrape never ranks every client).
    worst: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (provider, outcome) -> jobs the clients were first shown in a terminal phase.
    finished: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (provider, name) -> histogram (names and buckets: :data:`BUCKETS`).
    histograms: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    #: Clients whose counts were forgotten to keep :attr:`clients` within :data:`MAX_CLIENTS`.
    forgotten_clients: int = 0

    def observe(self, provider: str, name: str, value: float) -> None:
        """Count one observation into a provider's histogram ``name``."""
        histogram = self.histograms.get((provider, name))
        if histogram is None:
            histogram = self.histograms[(provider, name)] = Histogram(BUCKETS[name])
        histogram.observe(value)

    def blame(self, provider: str, key: str, kind: str) -> None:
        """Count one violation of a client, keeping :attr:`worst` up to date."""
        who = (provider, key)
        counts = self.clients.get(who)
        if counts is None:
            if len(self.clients) >= MAX_CLIENTS:
                self._forget_one()
            counts = self.clients[who] = Counter()
        counts[kind] += 1
        total = counts.total()
        worst = self.worst
        if who in worst or len(worst) < WORST_CLIENTS:
            worst[who] = total
            return
        least = min(worst, key=worst.__getitem__)
        if total > worst[least]:  # everyone outside has at most the least inside
            del worst[least]
            worst[who] = total

    def _forget_one(self) -> None:
        """Forget the longest-known client that is not among the worst."""
        for who in self.clients:
            if who not in self.worst:
                del self.clients[who]
                self.forgotten_clients += 1
                return


class _Where(NamedTuple):
    """A request's method and path, made into text only when evidence quotes it."""

    method: str
    path: str

    def __format__(self, spec: str) -> str:
        return f"{self.method} {self.path}"


def _offset(at: float, origin: float | None) -> str:
    return f"t+{at - origin:.1f} s" if origin is not None else f"t={at:.1f} s"


def _error_answer(status: int, fault: str | None) -> bool:
    return status >= 500 or status == 429 or status == 0 or (
        fault is not None and fault in _BODY_FAULTS)


class Journal:
    """Bounded record of requests plus summaries that judge client behaviour."""

    def __init__(self, *, capacity: int = 10_000, max_jobs: int = 10_000,
                 max_keys: int = 100_000) -> None:
        self.capacity = capacity
        self.max_jobs = max_jobs
        self.max_keys = max_keys
        # Plain tuples of strings and numbers, which the garbage collector stops tracking:
        # a full ring then costs collections nothing (an ``Entry`` is made when read).
        self._ring: deque[tuple[Any, ...]] = deque(maxlen=capacity)
        self._jobs: OrderedDict[str, JobSummary] = OrderedDict()
        self._keys: OrderedDict[str, KeySummary] = OrderedDict()
        self._providers: Counter[str] = Counter()
        self._seq = itertools.count()
        self.tally = Tally()
        #: Requests recorded since the last reset (the ring buffer may hold fewer).
        self.total = 0
        self.dropped_jobs = 0
        self.dropped_keys = 0

    @property
    def dropped_entries(self) -> int:
        """Entries pushed out of the ring buffer (shown no more; never judged from)."""
        return self.total - len(self._ring)

    def record(
        self,
        *,
        provider: str | None,
        operation: Operation | str | None,
        method: str,
        path: str,
        job_id: str | None,
        key: str | None,
        status: int,
        sim_time: float,
        real_time: float,
        duration_ms: float,
        phase: Phase | None = None,
        fault: str | None = None,
        retry_after: float | None = None,
        violations: Iterable[str] = (),
        finished_at: float | None = None,
    ) -> Entry:
        """Add one request; updates the summaries and returns the entry with its flags.

        ``finished_at`` is when the job shown reached its terminal phase, if it has (for the
        "late notice" histogram)."""
        return self.add(Request(provider, operation, method, path, job_id, key, status,
                                sim_time, real_time, duration_ms, phase, fault, retry_after,
                                tuple(violations), finished_at))

    def add(self, request: Request) -> Entry:
        """:meth:`record`, from a :class:`Request` (how the server hands requests over)."""
        (provider, operation, method, path, job_id, key, status, sim_time, real_time,
         duration_ms, phase, fault, retry_after, violations, finished_at) = request
        op = _OPERATIONS.get(operation) if operation is not None else None
        flags: list[str] = []
        now = sim_time
        job = who = None
        if job_id:
            job = self._jobs.get(job_id)
            if job is None:
                job = self._summary(job_id, provider, key)
            elif job.key is not None and key != job.key:
                job = None  # another key asking for this id: not its owner's poll (refused)
            else:
                self._jobs.move_to_end(job_id)
        if key is not None:
            who = self._keys.get(key)
            if who is None:
                who = self._key(key)
            else:
                self._keys.move_to_end(key)
        where = _Where(method, path)
        ignored: Evidence | None = None
        if who is not None:
            who.requests += 1
            if who.not_before is not None and shorter(now, who.not_before):
                flags.append(IGNORED_RETRY_AFTER)
                ignored = Evidence(now, f"{where} {who.not_before - now:.1f} s before the "
                                        "Retry-After it was given had passed")
                who.ignored_retry_after += 1
                if who.first_ignored_retry_after is None:
                    who.first_ignored_retry_after = ignored
        # A retry follows an error answer about the same job; a submit follows the key's last
        # submit (it has no job until it is answered).
        scope: JobSummary | KeySummary | None = (
            who if op is Operation.SUBMIT or job is None else job)
        error_at = scope.error_at if scope is not None else None
        retry = error_at is not None
        if retry:
            flags.append(RETRY)
            gap = now - error_at  # type: ignore[operator]
            for summary in (job, who):
                if summary is None:
                    continue
                summary.retries += 1
                if summary.min_retry_gap is None or gap < summary.min_retry_gap:
                    summary.min_retry_gap = gap
                    summary.fastest_retry = Evidence(now, f"{where} {gap:.3f} s after an error "
                                                     "answer")
        if job is not None:
            self._judge_job(job, who, op, status, phase, now, where, retry, finished_at, flags,
                            fault is not None and fault in _BODY_FAULTS)
            if ignored is not None:
                job.ignored_retry_after += 1
                if job.first_ignored_retry_after is None:
                    job.first_ignored_retry_after = ignored
            if fault:
                job.faults += 1
        elif op is Operation.STATUS and who is not None and not retry:
            who.polls += 1
        elif op is Operation.LIST and who is not None and not retry:
            self._judge_list(who, now, where)
        # Remember what this answer tells the next request.
        if scope is not None and (scope.error_at is not None or status >= 429 or status == 0
                                  or fault is not None):
            scope.error_at = now if _error_answer(status, fault) else None
        if who is not None and retry_after is not None:
            who.not_before = now + retry_after
        name = op._value_ if op is not None else operation
        self.tally.requests[(provider or "", name or "", status)] += 1
        if fault or flags:
            self._tally(provider or "", phase, fault, key, flags)
        row = (next(self._seq), provider, name, method, path, job_id, key, status, sim_time,
               real_time, duration_ms, phase._value_ if phase else None, fault, retry_after,
               violations, tuple(flags) if flags else ())
        self._ring.append(row)
        self.total += 1
        self._providers[provider or ""] += 1
        return Entry._make(row)

    def _judge_job(self, job: JobSummary, who: KeySummary | None, op: Operation | None,
                   status: int, phase: Phase | None, now: float, where: _Where, retry: bool,
                   finished_at: float | None, flags: list[str], corrupted: bool) -> None:
        job.last_request_at = now
        if op is Operation.SUBMIT:
            job.submitted_at = now
        elif op is Operation.STATUS:
            if retry:
                pass
            else:
                job.polls += 1
                if who is not None:
                    who.polls += 1
                if job.last_status_at is not None:
                    gap = now - job.last_status_at
                    self.tally.observe(job.provider or "", "poll_interval", gap)
                    if job.min_poll_interval is None or gap < job.min_poll_interval:
                        job.min_poll_interval = gap
                        job.fastest_poll = Evidence(now, f"{where} {gap:.3f} s after the "
                                                    "previous poll")
            job.last_status_at = now
            if job.terminal_seen_at is not None:
                flags.append(POLL_AFTER_TERMINAL)
                job.polls_after_terminal += 1
                if who is not None:
                    who.polls_after_terminal += 1
                if job.first_poll_after_terminal is None:
                    job.first_poll_after_terminal = Evidence(
                        now, f"{where} {now - job.terminal_seen_at:.1f} s after it was shown "
                             f"{job.terminal_phase}")
            if job.cancelled_at is not None:
                flags.append(POLL_AFTER_CANCEL)
                job.polls_after_cancel += 1
        elif op in (Operation.RESULT, Operation.CONTENT):
            job.result_fetches += 1
            if phase is not Phase.SUCCEEDED:
                flags.append(RESULT_BEFORE_SUCCESS)
                job.results_before_success += 1
                if who is not None:
                    who.results_before_success += 1
                if job.first_result_before_success is None:
                    job.first_result_before_success = Evidence(
                        now, f"{where} while the job was {phase or 'unknown'}")
        elif op is Operation.DOWNLOAD and status == 200:
            if job.downloads == 0 and job.submitted_at is not None:
                self.tally.observe(job.provider or "", "submit_to_download",
                                  now - job.submitted_at)
            job.downloads += 1
        elif op is Operation.CANCEL:
            job.cancels += 1
            if job.last_cancel_at is not None and not retry:
                gap = now - job.last_cancel_at
                if job.min_cancel_interval is None or gap < job.min_cancel_interval:
                    job.min_cancel_interval = gap
                    job.fastest_cancel = Evidence(now, f"{where} {gap:.3f} s after the "
                                                  "previous cancel")
            job.last_cancel_at = now
            if status < 400 and phase is Phase.CANCELLED and job.cancelled_at is None:
                job.cancelled_at = now
        # Shown only by an answer that reached the client intact: a dropped, cut, malformed or
        # empty body told it nothing, and its next request is a retry, not a poll too many.
        # An expired job answered 404/410 (RunComfy deletes it) was shown expired too.
        shown = status < 400 or (phase is Phase.EXPIRED and status in (404, 410))
        if (phase is not None and phase.terminal and shown and not corrupted
                and job.terminal_seen_at is None and op is not Operation.DOWNLOAD):
            job.terminal_seen_at = now
            job.terminal_phase = str(phase)
            tally = self.tally
            tally.finished[(job.provider or "", str(phase))] += 1
            tally.observe(job.provider or "", "polls_per_job", job.polls)
            if finished_at is not None and op is not Operation.SUBMIT:
                tally.observe(job.provider or "", "notice_lag", max(0.0, now - finished_at))

    @staticmethod
    def _judge_list(who: KeySummary, now: float, where: _Where) -> None:
        who.lists += 1
        last, who.last_list_at = who.last_list_at, now
        if last is None or now - last <= _SAME_INSTANT:
            return  # the first list, or another page of the same one
        gap = now - last
        if who.min_list_interval is None or gap < who.min_list_interval:
            who.min_list_interval = gap
            who.fastest_list = Evidence(now, f"{where} {gap:.3f} s after the previous list")

    def _tally(self, provider: str, phase: Phase | None, fault: str | None, key: str | None,
               flags: list[str]) -> None:
        tally = self.tally
        if fault:
            tally.faults[(provider, fault, phase._value_ if phase else "none")] += 1
        for flag in flags:
            if flag != RETRY:
                tally.violations[(provider, flag)] += 1
                if key is not None:
                    tally.blame(provider, key, flag)

    @property
    def entries(self) -> list[Entry]:
        """The retained entries, oldest first."""
        return list(map(Entry._make, self._ring))

    def job(self, job_id: str) -> JobSummary | None:
        """The summary of one job, if still retained."""
        return self._jobs.get(job_id)

    def jobs(self) -> list[JobSummary]:
        """Every retained job summary, oldest first."""
        return list(self._jobs.values())

    def recent(self, n: int) -> list[JobSummary]:
        """The ``n`` jobs asked about most recently, most recent first (O(n))."""
        return list(itertools.islice(reversed(self._jobs.values()), n))

    def key(self, key: str) -> KeySummary | None:
        """The summary of one API key (its owner hash), if still retained."""
        return self._keys.get(key)

    def keys(self) -> list[KeySummary]:
        """Every retained key summary, oldest first."""
        return list(self._keys.values())

    def requests_by_provider(self) -> dict[str, int]:
        """Requests recorded per provider since the last reset (never drops)."""
        return {name: count for name, count in self._providers.items() if name}

    def query(
        self, *, job_id: str | None = None, provider: str | None = None,
        key: str | None = None, limit: int | None = None,
    ) -> list[Entry]:
        """Retained entries, oldest first, filtered; ``limit`` keeps the most recent."""
        found = [e for e in map(Entry._make, self._ring)
                 if (job_id is None or e.job_id == job_id)
                 and (provider is None or e.provider == provider)
                 and (key is None or e.key == key)]
        return found[-limit:] if limit else found

    def reset(self) -> None:
        self._ring.clear()
        self._jobs.clear()
        self._keys.clear()
        self._providers.clear()
        self.tally = Tally()
        self.total = self.dropped_jobs = self.dropped_keys = 0

    def _summary(self, job_id: str, provider: str | None, key: str | None) -> JobSummary:
        summary = self._jobs.get(job_id)
        if summary is None:
            summary = self._jobs[job_id] = JobSummary(job_id, provider, key)
            if len(self._jobs) > self.max_jobs:
                self._jobs.popitem(last=False)
                self.dropped_jobs += 1
        else:
            self._jobs.move_to_end(job_id)
        return summary

    def _key(self, key: str) -> KeySummary:
        summary = self._keys.get(key)
        if summary is None:
            summary = self._keys[key] = KeySummary(key)
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
                self.dropped_keys += 1
        else:
            self._keys.move_to_end(key)
        return summary
