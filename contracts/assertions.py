"""Assertions over the journal: did the client behave? Messages say what, where and by how much.

Each takes a :class:`~wanmock.server.journal.Journal` (``app.state.wanmock.journal``, or the
``wanmock_journal`` fixture) and optionally one ``job_id``; it raises :class:`AssertionError`.

Verdicts come from the journal's summaries, which are updated on every request — never from its
ring buffer of recent entries, which forgets. When a summary a verdict needs was evicted (more
jobs or keys than ``journal.max_jobs`` / ``journal.max_keys``), the assertion fails saying so
rather than passing on missing evidence. Times are simulated, given as offsets from the job's
submit (``t+12.3 s``).

>>> from wanmock.server.journal import Journal
>>> assert_stopped_polling_at_terminal(Journal())   # an empty journal has nothing to judge
"""

from __future__ import annotations

from wanmock.server.journal import TOLERANCE, Evidence, JobSummary, Journal, KeySummary, shorter

__all__ = [
    "TOLERANCE",
    "assert_backed_off_on_5xx",
    "assert_cancelled_no_faster_than",
    "assert_fetched_result_only_after_success",
    "assert_gave_up_by",
    "assert_honoured_retry_after",
    "assert_listed_no_faster_than",
    "assert_polled_no_faster_than",
    "assert_stopped_polling_at_terminal",
    "shorter",
]




def _jobs(journal: Journal, job_id: str | None) -> list[JobSummary]:
    """The job summaries to judge; refuses to judge "every job" if some were evicted."""
    if job_id is None:
        if journal.dropped_jobs:
            raise AssertionError(
                f"the journal overflowed: {journal.dropped_jobs} job summaries were dropped, so "
                f"this cannot be judged; raise journal.max_jobs (now {journal.max_jobs})")
        return journal.jobs()
    summary = journal.job(job_id)
    if summary is None:
        dropped = (f" ({journal.dropped_jobs} job summaries were dropped: raise "
                   "journal.max_jobs)") if journal.dropped_jobs else ""
        raise AssertionError(f"the journal has no record of job {job_id!r}{dropped}")
    return [summary]


def _keys(journal: Journal) -> list[KeySummary]:
    if journal.dropped_keys:
        raise AssertionError(
            f"the journal overflowed: {journal.dropped_keys} key summaries were dropped, so this "
            f"cannot be judged; raise journal.max_keys (now {journal.max_keys})")
    return journal.keys()


def _where(summary: JobSummary, evidence: Evidence | None) -> str:
    if evidence is None:
        return ""
    return f" (first at {summary.offset(evidence.at)}: {evidence.detail})"


def _violations(journal: Journal, job_id: str | None, counter: str,
                evidence: str) -> tuple[int, str]:
    """How many requests broke a rule, and where the first was.

    Whole-journal verdicts count per key (complete as long as no key summary was dropped) and
    name a job only for the message; a verdict on one job reads that job's summary."""
    if job_id is not None:
        (summary,) = _jobs(journal, job_id)
        return getattr(summary, counter), _where(summary, getattr(summary, evidence))
    count = sum(getattr(k, counter) for k in _keys(journal))
    job = next((s for s in journal.jobs() if getattr(s, counter)), None)
    return count, _where(job, getattr(job, evidence)) if job is not None else ""


def assert_stopped_polling_at_terminal(journal: Journal, job_id: str | None = None) -> None:
    """No status request after the client had been shown a terminal status."""
    count, where = _violations(journal, job_id, "polls_after_terminal",
                               "first_poll_after_terminal")
    if count:
        raise AssertionError(f"the client kept polling after a terminal status: {count} poll(s) "
                             f"after it was told the job ended{where}")


def assert_polled_no_faster_than(journal: Journal, seconds: float,
                                 job_id: str | None = None) -> None:
    """Consecutive polls of a job were at least ``seconds`` apart (retries after an error
    answer are judged by :func:`assert_backed_off_on_5xx` instead)."""
    for summary in _jobs(journal, job_id):
        fastest = summary.min_poll_interval
        if fastest is not None and shorter(fastest, seconds):
            raise AssertionError(
                f"job {summary.job_id} was polled {fastest:.3f} s apart"
                f"{_where(summary, summary.fastest_poll)}; the client should wait at least "
                f"{seconds:g} s between polls (threshold: minimum poll interval)")


def assert_cancelled_no_faster_than(journal: Journal, seconds: float,
                                    job_id: str | None = None) -> None:
    """Consecutive cancels of a job were at least ``seconds`` apart: a refused cancel sent
    again at once hammers the provider as a fast poller does."""
    for summary in _jobs(journal, job_id):
        fastest = summary.min_cancel_interval
        if fastest is not None and shorter(fastest, seconds):
            raise AssertionError(
                f"job {summary.job_id} was cancelled {fastest:.3f} s apart "
                f"({summary.cancels} cancels){_where(summary, summary.fastest_cancel)}; a "
                f"cancel the provider refused will not succeed sooner: wait at least "
                f"{seconds:g} s before sending it again (threshold: minimum poll interval)")


def assert_listed_no_faster_than(journal: Journal, seconds: float,
                                 started_at: float = 0.0) -> None:
    """Consecutive task-list requests of a key were at least ``seconds`` apart: listing is
    polling every job at once (pages fetched at one instant are one list). Times in the message
    are offsets from ``started_at`` (lists address no job to count from)."""
    for key in _keys(journal):
        fastest = key.min_list_interval
        if fastest is not None and shorter(fastest, seconds):
            evidence = key.fastest_list
            where = (f" (at t+{evidence.at - started_at:.1f} s: {evidence.detail})"
                     if evidence else "")
            raise AssertionError(
                f"the client listed its tasks {fastest:.3f} s apart{where}; a list is a poll of "
                f"every job, wait at least {seconds:g} s between lists (threshold: minimum poll "
                "interval)")


def assert_honoured_retry_after(journal: Journal, job_id: str | None = None) -> None:
    """No request sooner than a ``Retry-After`` the same key had been given."""
    count, where = _violations(journal, job_id, "ignored_retry_after",
                               "first_ignored_retry_after")
    if count:
        raise AssertionError(f"the client ignored Retry-After: {count} request(s) before the "
                             f"time it was told to wait{where}")


def assert_fetched_result_only_after_success(journal: Journal, job_id: str | None = None) -> None:
    """No result/content fetch before the job succeeded."""
    count, where = _violations(journal, job_id, "results_before_success",
                               "first_result_before_success")
    if count:
        raise AssertionError(f"the client fetched the result before the job succeeded: "
                             f"{count} fetch(es){where}")


def assert_backed_off_on_5xx(journal: Journal, minimum: float = 1.0,
                             job_id: str | None = None) -> None:
    """After an error answer (5xx, 429, or a dropped or corrupted body) the client waited at
    least ``minimum`` seconds before trying again (its own or its HTTP library's retry)."""
    candidates: list[JobSummary | KeySummary] = list(
        _jobs(journal, job_id) if job_id is not None else _keys(journal))
    for summary in candidates:
        gap = summary.min_retry_gap
        if gap is not None and shorter(gap, minimum):
            evidence = summary.fastest_retry
            where = ""
            if evidence is not None:
                at = (summary.offset(evidence.at) if isinstance(summary, JobSummary)
                      else f"t={evidence.at:.1f} s")
                where = f" (at {at}: {evidence.detail})"
            raise AssertionError(
                f"the client retried {gap:.3f} s after an error answer{where}; back off at least "
                f"{minimum:g} s (threshold: minimum back-off after an error)")


def assert_gave_up_by(journal: Journal, seconds: float, job_id: str | None = None) -> None:
    """The client stopped asking about a job within ``seconds`` of submitting it."""
    for summary in _jobs(journal, job_id):
        if summary.submitted_at is None or summary.last_request_at is None:
            continue
        span = summary.last_request_at - summary.submitted_at
        if shorter(seconds, span):
            raise AssertionError(
                f"the client was still asking about job {summary.job_id} at t+{span:.0f} s; it "
                f"should give up by t+{seconds:g} s (threshold: give-up time)")
