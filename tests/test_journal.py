import pytest

from wanmock.server.journal import Journal
from wanmock.server.vocab import Operation, Phase


def record(journal: Journal, op: Operation, t: float, **kw: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = dict(provider="p", operation=op, method="GET", path="/x",
                                     job_id="j", key="k", status=200, sim_time=t, real_time=0.0,
                                     duration_ms=1.0)
    fields.update(kw)
    return journal.record(**fields)  # type: ignore[arg-type]


def test_flags_polls_after_terminal_and_early_results() -> None:
    journal = Journal()
    record(journal, Operation.SUBMIT, 0, phase=Phase.QUEUED)
    early = record(journal, Operation.RESULT, 1, phase=Phase.RUNNING)
    assert early.flags == ("result-before-success",)
    record(journal, Operation.STATUS, 5, phase=Phase.RUNNING)
    record(journal, Operation.STATUS, 10, phase=Phase.FAILED)
    after = record(journal, Operation.STATUS, 10.01, phase=Phase.FAILED)
    assert after.flags == ("poll-after-terminal",)
    summary = journal.job("j")
    assert summary is not None
    counts = (summary.polls, summary.polls_after_terminal, summary.results_before_success)
    assert counts == (3, 1, 1)
    assert summary.terminal_phase == "failed" and summary.terminal_seen_at == 10
    assert summary.min_poll_interval is not None and summary.min_poll_interval < 0.02
    assert summary.fastest_poll is not None and summary.fastest_poll.at == 10.01
    assert summary.first_poll_after_terminal is not None
    assert summary.offset(summary.first_poll_after_terminal.at) == "t+10.0 s"


def test_flags_requests_sooner_than_retry_after_per_key() -> None:
    journal = Journal()
    record(journal, Operation.STATUS, 0, status=429, retry_after=5.0)
    too_soon = record(journal, Operation.STATUS, 2)
    other_key = record(journal, Operation.STATUS, 2, key="other", job_id="j2")
    in_time = record(journal, Operation.STATUS, 5)
    assert too_soon.flags == ("ignored-retry-after", "retry")
    assert other_key.flags == () and in_time.flags == ()
    assert journal.job("j").ignored_retry_after == 1  # type: ignore[union-attr]
    assert journal.key("k").ignored_retry_after == 1  # type: ignore[union-attr]


def test_waiting_exactly_a_retry_after_meets_it_despite_float_sums() -> None:
    journal = Journal()
    record(journal, Operation.STATUS, 0.1, status=429, retry_after=3.3)
    waited = 0.1
    for _ in range(3):  # a client that slept the 3.3 s in three naps
        waited += 3.3 / 3
    assert waited < 0.1 + 3.3  # 3.3999999999999995: short by rounding alone
    exact = record(journal, Operation.STATUS, waited)
    assert "ignored-retry-after" not in exact.flags
    record(journal, Operation.STATUS, 10, status=429, retry_after=3.3)
    short = record(journal, Operation.STATUS, 13.299)
    assert "ignored-retry-after" in short.flags  # a millisecond early is early


def test_a_request_after_an_error_answer_is_a_retry_not_a_poll() -> None:
    journal = Journal()
    record(journal, Operation.SUBMIT, 0, phase=Phase.QUEUED)
    record(journal, Operation.STATUS, 5, phase=Phase.QUEUED)
    record(journal, Operation.STATUS, 10, status=503)
    retry = record(journal, Operation.STATUS, 10.2, phase=Phase.RUNNING)
    record(journal, Operation.STATUS, 15, phase=Phase.RUNNING, fault="truncated-json")
    second = record(journal, Operation.STATUS, 15.5, phase=Phase.RUNNING)
    poll = record(journal, Operation.STATUS, 20, phase=Phase.RUNNING)
    assert retry.flags == second.flags == ("retry",) and poll.flags == ()
    job = journal.job("j")
    assert job is not None
    assert (job.polls, job.retries) == (4, 2)  # 5, 10, 15, 20 are polls
    assert job.min_retry_gap is not None and abs(job.min_retry_gap - 0.2) < 1e-9
    assert job.min_poll_interval == 4.5  # 15.5 -> 20; the gaps ending at a retry do not count
    submit_error = record(journal, Operation.SUBMIT, 30, status=502, job_id=None)
    resubmit = record(journal, Operation.SUBMIT, 30.05, job_id="j3", phase=Phase.QUEUED)
    assert submit_error.flags == () and resubmit.flags == ("retry",)
    key = journal.key("k")
    assert key is not None and key.min_retry_gap is not None and key.min_retry_gap < 0.1


def test_summaries_keep_counting_after_the_ring_overflows() -> None:
    journal = Journal(capacity=100)
    record(journal, Operation.SUBMIT, 0, phase=Phase.QUEUED)
    record(journal, Operation.STATUS, 0.01, status=429, retry_after=5.0)
    for i in range(2000):
        record(journal, Operation.STATUS, 0.02 + i * 0.01, phase=Phase.QUEUED)
    assert len(journal.entries) == 100 and journal.dropped_entries == 1902
    assert not [e for e in journal.entries if "ignored-retry-after" in e.flags]  # ring forgot
    job = journal.job("j")
    too_soon = sum(1 for i in range(2000) if 0.02 + i * 0.01 < 0.01 + 5.0)
    assert job is not None and job.ignored_retry_after == too_soon and job.polls == 2000


def test_journal_is_bounded_and_counts_what_it_dropped() -> None:
    journal = Journal(capacity=100, max_jobs=10, max_keys=5)
    for i in range(1000):
        record(journal, Operation.STATUS, i, job_id=f"j{i}", key=f"k{i % 20}")
    assert len(journal.entries) == 100 and journal.total == 1000
    assert len(journal.jobs()) == 10 and journal.job("j999") is not None
    assert journal.job("j0") is None and journal.dropped_jobs == 990
    assert len(journal.keys()) == 5 and journal.dropped_keys > 0
    assert [e.job_id for e in journal.query(limit=2)] == ["j998", "j999"]
    assert journal.requests_by_provider() == {"p": 1000}
    journal.reset()
    assert journal.total == 0 and not journal.jobs() and journal.dropped_jobs == 0


def test_tally_counts_requests_faults_violations_and_histograms() -> None:
    journal = Journal()
    record(journal, Operation.SUBMIT, 0, phase=Phase.QUEUED)
    record(journal, Operation.STATUS, 1, status=503, fault="http-503", phase=Phase.QUEUED)
    record(journal, Operation.STATUS, 5, phase=Phase.SUCCEEDED, finished_at=3.0)
    record(journal, Operation.STATUS, 6, phase=Phase.SUCCEEDED)
    record(journal, Operation.DOWNLOAD, 7, phase=Phase.SUCCEEDED)
    tally = journal.tally
    assert tally.requests[("p", "status", 503)] == 1 and tally.requests[("p", "status", 200)] == 2
    assert tally.faults == {("p", "http-503", "queued"): 1}
    assert tally.violations == {("p", "poll-after-terminal"): 1}
    assert tally.finished == {("p", "succeeded"): 1}
    lag = tally.histograms[("p", "notice_lag")]
    assert (lag.count, lag.total) == (1, 2.0)
    assert tally.histograms[("p", "submit_to_download")].total == 7.0
    assert tally.histograms[("p", "polls_per_job")].count == 1


@pytest.mark.parametrize("fault", ["drop", "truncated-json", "malformed-json", "empty-body",
                                   "timeout"])
def test_a_terminal_status_in_a_corrupted_answer_was_not_shown(fault: str) -> None:
    # known good: the terminal answer never reached the client, so asking again is a retry
    journal = Journal()
    record(journal, Operation.SUBMIT, 0, phase=Phase.QUEUED)
    record(journal, Operation.STATUS, 120, phase=Phase.SUCCEEDED, fault=fault)
    retry = record(journal, Operation.STATUS, 121, phase=Phase.SUCCEEDED)
    assert retry.flags == ("retry",)
    job = journal.job("j")
    assert job is not None and job.terminal_seen_at == 121 and job.polls_after_terminal == 0
    assert journal.tally.finished == {("p", "succeeded"): 1}
    # known bad: the intact answer after it was shown; one more poll is one too many
    again = record(journal, Operation.STATUS, 126, phase=Phase.SUCCEEDED)
    assert again.flags == ("poll-after-terminal",) and job.polls_after_terminal == 1


def test_another_keys_requests_for_a_job_are_not_its_owners_polls() -> None:
    """Key B asking for key A's job (refused: 404) is no poll of A's job: A's intervals,
    terminal state and last request stay A's own, and B is not flagged for a state it was
    never shown."""
    journal = Journal()
    record(journal, Operation.SUBMIT, 0, phase=Phase.QUEUED)
    record(journal, Operation.STATUS, 5, phase=Phase.SUCCEEDED)
    stranger = [record(journal, Operation.STATUS, t, key="b", status=404) for t in (5.2, 7000)]
    job = journal.job("j")
    assert job is not None
    assert (job.polls, job.polls_after_terminal, job.last_request_at) == (1, 0, 5)
    assert job.min_poll_interval is None
    assert all("poll-after-terminal" not in entry.flags for entry in stranger)
    owner_again = record(journal, Operation.STATUS, 6, phase=Phase.SUCCEEDED)
    assert owner_again.flags == ("poll-after-terminal",)  # the owner's own are still judged
