import pytest

from wanmock.contracts import assertions as a
from wanmock.server.journal import Journal
from wanmock.server.vocab import Operation, Phase


def journal_of(*events: tuple[Operation, float, dict]) -> Journal:  # type: ignore[type-arg]
    journal = Journal()
    for op, t, extra in events:
        fields = dict(provider="p", operation=op, method="GET", path="/x", job_id="j",
                      key="k", status=200, sim_time=t, real_time=0.0, duration_ms=0.0)
        fields.update(extra)
        journal.record(**fields)  # type: ignore[arg-type]
    return journal


GOOD = journal_of((Operation.SUBMIT, 0, {"phase": Phase.QUEUED}),
                  (Operation.STATUS, 5, {"phase": Phase.RUNNING}),
                  (Operation.STATUS, 10, {"phase": Phase.SUCCEEDED}),
                  (Operation.RESULT, 11, {"phase": Phase.SUCCEEDED}))


def test_a_good_journal_passes_everything() -> None:
    a.assert_stopped_polling_at_terminal(GOOD)
    a.assert_polled_no_faster_than(GOOD, 5)
    a.assert_honoured_retry_after(GOOD)
    a.assert_fetched_result_only_after_success(GOOD)
    a.assert_backed_off_on_5xx(GOOD)
    a.assert_gave_up_by(GOOD, 60, job_id="j")


@pytest.mark.parametrize(
    ("check", "events", "message"),
    [
        (a.assert_stopped_polling_at_terminal,
         [(Operation.STATUS, 1, {"phase": Phase.FAILED}), (Operation.STATUS, 2, {})],
         "kept polling after a terminal status: 1 poll"),
        (lambda j: a.assert_polled_no_faster_than(j, 1),
         [(Operation.STATUS, 1, {}), (Operation.STATUS, 1.01, {})], "polled 0.010 s apart"),
        (a.assert_honoured_retry_after,
         [(Operation.STATUS, 1, {"status": 429, "retry_after": 10}), (Operation.STATUS, 2, {})],
         "ignored Retry-After: 1 request"),
        (a.assert_fetched_result_only_after_success,
         [(Operation.RESULT, 1, {"phase": Phase.RUNNING})], "before the job succeeded"),
        (a.assert_backed_off_on_5xx,
         [(Operation.STATUS, 1, {"status": 503}), (Operation.STATUS, 1.1, {})],
         "retried 0.100 s after a 503"),
        (lambda j: a.assert_gave_up_by(j, 100),
         [(Operation.SUBMIT, 0, {}), (Operation.STATUS, 500, {})], "still polling job j 500 s"),
    ],
)
def test_each_assertion_fails_with_a_readable_message(check, events, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AssertionError, match=message.replace("(", r"\(")):
        check(journal_of(*events))


def test_asking_about_an_unknown_job_is_an_error() -> None:
    with pytest.raises(AssertionError, match="no record of job 'zzz'"):
        a.assert_polled_no_faster_than(GOOD, 1, job_id="zzz")
