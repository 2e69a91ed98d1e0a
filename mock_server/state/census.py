"""Jobs by provider and phase at any instant, in O(log n) per question, kept up as jobs change.

A job's phase is a function of time (:func:`~wanmock.server.lifecycle.phase_changes`), so the
census keeps, for every kind of move (provider, from phase, to phase), the sorted instants at
which jobs make it. The jobs in a phase at ``now`` are those that started in it, plus the moves
into it up to ``now``, minus the moves out of it: one bisection per kind of move, whatever the
number of jobs. A scrape of the metrics then costs the same with 100 jobs or 2 million.

>>> from wanmock.server.lifecycle import JobRecord, JobRequest, Slotted
>>> req = JobRequest(model="m", prompt="a cat", width=1024, height=1024)
>>> census = PhaseCensus()
>>> census.admit(JobRecord(id="j1", provider="p", owner="k", request=req, created_at=0.0,
...                        start_at=10.0, end_at=70.0, expires_at=1000.0, evict_at=2000.0,
...                        schedule=Slotted("q", 0)))
>>> [{str(k): v for k, v in census.jobs(t)["p"].items() if v} for t in (5, 10, 70)]
[{'queued': 1}, {'running': 1}, {'succeeded': 1}]
"""

from __future__ import annotations

import itertools
from collections import Counter

from sortedcontainers import SortedList

from ..lifecycle import JobRecord, phase_changes
from ..vocab import Phase

__all__ = ["PhaseCensus"]


class PhaseCensus:
    """Counts of jobs by phase, of jobs submitted and of jobs finished by outcome."""

    def __init__(self) -> None:
        #: (provider, phase) -> jobs whose first phase it is.
        self._first: Counter[tuple[str, Phase]] = Counter()
        #: (provider, from, to) -> instants jobs make that move.
        self._moves: dict[tuple[str, Phase, Phase], SortedList[float]] = {}
        #: (provider, outcome) -> jobs forgotten after they had finished.
        self._gone: Counter[tuple[str, Phase]] = Counter()
        self._submitted: Counter[str] = Counter()

    def admit(self, record: JobRecord) -> None:
        """A new job: counted as submitted, and from now on by phase."""
        self._submitted[record.provider] += 1
        self.add(record)

    def add(self, record: JobRecord) -> None:
        """Count a job as this record says (after :meth:`remove` of its previous record)."""
        provider = record.provider
        changes = phase_changes(record)
        self._first[(provider, changes[0][1])] += 1
        for (_, before), (at, after) in itertools.pairwise(changes):
            moves = self._moves.get((provider, before, after))
            if moves is None:
                moves = self._moves[(provider, before, after)] = SortedList()
            moves.add(at)

    def remove(self, record: JobRecord) -> None:
        """Stop counting a job as this record (the one last added) says."""
        provider = record.provider
        changes = phase_changes(record)
        self._first[(provider, changes[0][1])] -= 1
        for (_, before), (at, after) in itertools.pairwise(changes):
            self._moves[(provider, before, after)].remove(at)

    def replace(self, old: JobRecord, new: JobRecord) -> None:
        """A job's record changed (a cancel, a reschedule, a poll-driven end)."""
        self.remove(old)
        self.add(new)

    def forget(self, record: JobRecord, now: float) -> None:
        """A job leaves the store at ``now``: it still counts as finished if it had."""
        self.remove(record)
        end = _end(phase_changes(record))
        if end is not None and end[0] <= now:
            self._gone[(record.provider, end[1])] += 1

    def jobs(self, now: float) -> dict[str, dict[Phase, int]]:
        """Jobs held, by provider and phase at ``now``."""
        out: dict[str, dict[Phase, int]] = {}
        for (provider, phase), n in self._first.items():
            if n:
                counts = out.setdefault(provider, dict.fromkeys(Phase, 0))
                counts[phase] += n
        for (provider, before, after), moves in self._moves.items():
            moved = moves.bisect_right(now)
            if moved:
                counts = out.setdefault(provider, dict.fromkeys(Phase, 0))
                counts[before] -= moved
                counts[after] += moved
        return out

    def finished(self, now: float) -> dict[str, dict[Phase, int]]:
        """Jobs that reached a terminal phase by ``now`` (forgotten ones too), by provider and
        the first terminal phase they reached."""
        # Phases only move forward, so a job's first terminal phase is the one it enters from
        # a phase that is not terminal (or the one it starts in).
        out: dict[str, dict[Phase, int]] = {}
        counted: list[tuple[str, Phase, int]] = [*((p, o, n) for (p, o), n in self._gone.items()),
                                                 *((p, o, n) for (p, o), n in self._first.items()
                                                   if o.terminal)]
        counted += [(p, after, moves.bisect_right(now))
                    for (p, before, after), moves in self._moves.items()
                    if after.terminal and not before.terminal]
        for provider, outcome, n in counted:
            if n:
                counts = out.setdefault(provider, {})
                counts[outcome] = counts.get(outcome, 0) + n
        return out

    def submitted(self) -> dict[str, int]:
        """Jobs accepted since the last reset, by provider."""
        return dict(self._submitted)

    def clear(self) -> None:
        self._first.clear()
        self._moves.clear()
        self._gone.clear()
        self._submitted.clear()


def _end(changes: list[tuple[float, Phase]]) -> tuple[float, Phase] | None:
    """When and how a job first reaches a terminal phase (``None``: it never does)."""
    return next(((at, phase) for at, phase in changes if phase.terminal), None)
