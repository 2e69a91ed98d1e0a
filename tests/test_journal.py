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
    assert summary.intervals()[0] == 5
    assert summary.min_poll_interval is not None and summary.min_poll_interval < 0.02


def test_flags_requests_sooner_than_retry_after_per_key() -> None:
    journal = Journal()
    record(journal, Operation.STATUS, 0, status=429, retry_after=5.0)
    too_soon = record(journal, Operation.STATUS, 2)
    other_key = record(journal, Operation.STATUS, 2, key="other")
    in_time = record(journal, Operation.STATUS, 5)
    assert too_soon.flags == ("ignored-retry-after",)
    assert other_key.flags == () and in_time.flags == ()
    assert journal.job("j").ignored_retry_after == 1  # type: ignore[union-attr]


def test_journal_is_bounded() -> None:
    journal = Journal(capacity=100, max_jobs=10)
    for i in range(1000):
        record(journal, Operation.STATUS, i, job_id=f"j{i}")
    assert len(journal.entries) == 100 and journal.total == 1000
    assert len(journal.jobs()) == 10 and journal.job("j999") is not None
    assert journal.job("j0") is None
    assert [e.job_id for e in journal.query(limit=2)] == ["j998", "j999"]
    journal.reset()
    assert journal.total == 0 and not journal.jobs()
