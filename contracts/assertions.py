"""Assertions over the journal: did the client behave? Messages say what, where and by how much.

Each takes a :class:`~wanmock.server.journal.Journal` (``app.state.wanmock.journal``, or the
``wanmock_journal`` fixture) and optionally one ``job_id``; it raises :class:`AssertionError`.

>>> from wanmock.server.journal import Journal
>>> assert_stopped_polling_at_terminal(Journal())   # an empty journal has nothing to judge
"""

from __future__ import annotations

from collections.abc import Iterable

from wanmock.server.journal import (
    IGNORED_RETRY_AFTER,
    POLL_AFTER_TERMINAL,
    RESULT_BEFORE_SUCCESS,
    Entry,
    JobSummary,
    Journal,
)

__all__ = [
    "assert_backed_off_on_5xx",
    "assert_fetched_result_only_after_success",
    "assert_gave_up_by",
    "assert_honoured_retry_after",
    "assert_polled_no_faster_than",
    "assert_stopped_polling_at_terminal",
]


def _jobs(journal: Journal, job_id: str | None) -> list[JobSummary]:
    if job_id is None:
        return journal.jobs()
    summary = journal.job(job_id)
    if summary is None:
        raise AssertionError(f"the journal has no record of job {job_id!r}")
    return [summary]


def _flagged(journal: Journal, flag: str, job_id: str | None) -> list[Entry]:
    return [e for e in journal.query(job_id=job_id) if flag in e.flags]


def _where(entries: Iterable[Entry]) -> str:
    return "; ".join(f"{e.method} {e.path} at t+{e.sim_time:.2f}" for e in list(entries)[:5])


def assert_stopped_polling_at_terminal(journal: Journal, job_id: str | None = None) -> None:
    """No status poll after the client had been shown a terminal status."""
    bad = _flagged(journal, POLL_AFTER_TERMINAL, job_id)
    if bad:
        raise AssertionError(f"the client kept polling after a terminal status: {len(bad)} "
                             f"poll(s) after it was told the job ended ({_where(bad)})")


def assert_polled_no_faster_than(journal: Journal, seconds: float,
                                 job_id: str | None = None) -> None:
    """Consecutive status polls of a job were at least ``seconds`` apart."""
    for summary in _jobs(journal, job_id):
        fastest = summary.min_poll_interval
        if fastest is not None and fastest < seconds:
            raise AssertionError(f"job {summary.job_id} was polled {fastest:.3f} s apart; "
                                 f"the client should wait at least {seconds:g} s between polls")


def assert_honoured_retry_after(journal: Journal, job_id: str | None = None) -> None:
    """No request sooner than a ``Retry-After`` the same key had been given."""
    bad = _flagged(journal, IGNORED_RETRY_AFTER, job_id)
    if bad:
        raise AssertionError(f"the client ignored Retry-After: {len(bad)} request(s) before the "
                             f"time it was told to wait ({_where(bad)})")


def assert_fetched_result_only_after_success(journal: Journal, job_id: str | None = None) -> None:
    """No result/content fetch before the job succeeded."""
    bad = _flagged(journal, RESULT_BEFORE_SUCCESS, job_id)
    if bad:
        raise AssertionError(f"the client fetched the result before the job succeeded "
                             f"({_where(bad)})")


def assert_backed_off_on_5xx(journal: Journal, minimum: float = 1.0,
                             job_id: str | None = None) -> None:
    """After each 5xx, the same key waited at least ``minimum`` seconds before its next request."""
    entries = journal.query(job_id=job_id) if job_id else list(journal.entries)
    last_5xx: dict[str | None, Entry] = {}
    for entry in entries:
        previous = last_5xx.pop(entry.key, None)
        if previous is not None and entry.sim_time - previous.sim_time < minimum:
            raise AssertionError(
                f"the client retried {entry.sim_time - previous.sim_time:.3f} s after a "
                f"{previous.status} on {previous.method} {previous.path}; back off at least "
                f"{minimum:g} s")
        if entry.status >= 500:
            last_5xx[entry.key] = entry


def assert_gave_up_by(journal: Journal, seconds: float, job_id: str | None = None) -> None:
    """The client stopped asking about a job within ``seconds`` of submitting it."""
    for summary in _jobs(journal, job_id):
        entries = journal.query(job_id=summary.job_id)
        if summary.submitted_at is None or not entries:
            continue
        span = entries[-1].sim_time - summary.submitted_at
        if span > seconds:
            raise AssertionError(f"the client was still polling job {summary.job_id} "
                                 f"{span:.0f} s after submitting it; it should give up by "
                                 f"{seconds:g} s")
