import itertools

import pytest

from wanmock.contracts import assertions as a
from wanmock.server.journal import Journal
from wanmock.server.vocab import Operation, Phase


def journal_of(*events: tuple[Operation, float, dict], **limits: int) -> Journal:  # type: ignore[type-arg]
    journal = Journal(**limits)
    for op, t, extra in events:
        fields = dict(provider="p", operation=op, method="GET", path="/x", job_id="j",
                      key="k", status=200, sim_time=t, real_time=0.0, duration_ms=0.0)
        fields.update(extra)
        journal.record(**fields)  # type: ignore[arg-type]
    return journal


GOOD = journal_of((Operation.SUBMIT, 0, {"phase": Phase.QUEUED}),
                  (Operation.STATUS, 5, {"phase": Phase.RUNNING}),
                  (Operation.STATUS, 10, {"status": 503}),
                  (Operation.STATUS, 12, {"phase": Phase.SUCCEEDED}),
                  (Operation.RESULT, 13, {"phase": Phase.SUCCEEDED}))


def test_a_good_journal_passes_everything() -> None:
    a.assert_stopped_polling_at_terminal(GOOD)
    a.assert_polled_no_faster_than(GOOD, 5)
    a.assert_honoured_retry_after(GOOD)
    a.assert_fetched_result_only_after_success(GOOD)
    a.assert_backed_off_on_5xx(GOOD, 2)
    a.assert_gave_up_by(GOOD, 60, job_id="j")


@pytest.mark.parametrize(
    ("check", "events", "message"),
    [
        (a.assert_stopped_polling_at_terminal,
         [(Operation.SUBMIT, 0, {}), (Operation.STATUS, 1, {"phase": Phase.FAILED}),
          (Operation.STATUS, 2, {})],
         r"kept polling after a terminal status: 1 poll\(s\) .*first at t\+2.0 s"),
        (lambda j: a.assert_polled_no_faster_than(j, 1),
         [(Operation.SUBMIT, 0, {}), (Operation.STATUS, 1, {}), (Operation.STATUS, 1.01, {})],
         r"polled 0.010 s apart \(first at t\+1.0 s.*minimum poll interval"),
        (a.assert_honoured_retry_after,
         [(Operation.STATUS, 1, {"status": 429, "retry_after": 10}), (Operation.STATUS, 2, {})],
         r"ignored Retry-After: 1 request"),
        (a.assert_fetched_result_only_after_success,
         [(Operation.RESULT, 1, {"phase": Phase.RUNNING})], "before the job succeeded"),
        (a.assert_backed_off_on_5xx,
         [(Operation.STATUS, 1, {"status": 503}), (Operation.STATUS, 1.1, {})],
         r"retried 0.100 s after an error answer.*minimum back-off"),
        (a.assert_backed_off_on_5xx,
         [(Operation.STATUS, 1, {"fault": "drop"}), (Operation.STATUS, 1.1, {})],
         r"retried 0.100 s after an error answer"),
        (lambda j: a.assert_gave_up_by(j, 100),
         [(Operation.SUBMIT, 0, {}), (Operation.STATUS, 500, {})],
         r"job j at t\+500 s.*give-up time"),
    ],
)
def test_each_assertion_fails_with_a_readable_message(check, events, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AssertionError, match=message):
        check(journal_of(*events))


def test_a_bad_client_fails_after_the_ring_buffer_overflowed() -> None:
    """The issue's case: polls every 10 ms ignoring Retry-After, 14641 polls, ring of 10000."""
    events: list[tuple[Operation, float, dict]] = [  # type: ignore[type-arg]
        (Operation.SUBMIT, 0, {"phase": Phase.QUEUED})]
    for i in range(14641):
        t = 0.01 * (i + 1)
        extra = {"status": 429, "retry_after": 5.0} if i % 500 == 0 else {"phase": Phase.QUEUED}
        events.append((Operation.STATUS, t, extra))
    journal = journal_of(*events, capacity=10_000)
    assert journal.dropped_entries > 0
    with pytest.raises(AssertionError, match=r"ignored Retry-After"):
        a.assert_honoured_retry_after(journal)
    with pytest.raises(AssertionError, match=r"retried 0\.010 s after an error answer"):
        a.assert_backed_off_on_5xx(journal)
    with pytest.raises(AssertionError, match=r"0\.010 s apart"):
        a.assert_polled_no_faster_than(journal, 1)


def test_evicted_summaries_fail_loudly_instead_of_passing() -> None:
    events = [(Operation.STATUS, float(i), {"job_id": f"j{i}"}) for i in range(5)]
    journal = journal_of(*events, max_jobs=2, max_keys=1)
    with pytest.raises(AssertionError, match="journal overflowed: 3 job summaries were dropped"):
        a.assert_polled_no_faster_than(journal, 1)
    with pytest.raises(AssertionError, match=r"raise journal\.max_jobs"):
        a.assert_gave_up_by(journal, 10)
    keys = journal_of(*[(Operation.STATUS, float(i), {"key": f"k{i}"}) for i in range(3)],
                      max_keys=1)
    with pytest.raises(AssertionError, match="2 key summaries were dropped"):
        a.assert_honoured_retry_after(keys)


def test_asking_about_an_unknown_job_is_an_error() -> None:
    with pytest.raises(AssertionError, match="no record of job 'zzz'"):
        a.assert_polled_no_faster_than(GOOD, 1, job_id="zzz")


@pytest.mark.parametrize("limit", [0.1, 0.3, 1.1, 1.3, 3.3, 9.1])
def test_waiting_exactly_the_threshold_passes_and_measurably_less_fails(limit: float) -> None:
    # Simulated times are sums of the client's sleeps, so a gap of exactly ``limit`` comes out
    # a few ulps short of it (3.3 + 3.3 + 3.3 - 6.6 < 3.3).
    exact, error_at = [0.0], 1000.0
    for _ in range(30):
        exact.append(exact[-1] + limit)
    assert any(b - a < limit for a, b in itertools.pairwise(exact))
    good = journal_of(*[(Operation.STATUS, t, {}) for t in exact],
                      (Operation.STATUS, error_at, {"status": 503}),
                      (Operation.STATUS, error_at + limit, {}))
    a.assert_polled_no_faster_than(good, limit)
    a.assert_backed_off_on_5xx(good, limit)
    a.assert_gave_up_by(journal_of((Operation.SUBMIT, 0, {}), (Operation.STATUS, limit, {})),
                        limit)
    short = limit - 1e-4  # measurably less: a tenth of a millisecond
    bad = journal_of((Operation.STATUS, 0, {}), (Operation.STATUS, short, {}),
                     (Operation.STATUS, error_at, {"status": 503}),
                     (Operation.STATUS, error_at + short, {}))
    with pytest.raises(AssertionError, match="minimum poll interval"):
        a.assert_polled_no_faster_than(bad, limit)
    with pytest.raises(AssertionError, match="minimum back-off"):
        a.assert_backed_off_on_5xx(bad, limit)
    with pytest.raises(AssertionError, match="give-up time"):
        a.assert_gave_up_by(journal_of((Operation.SUBMIT, 0, {}),
                                       (Operation.STATUS, limit + 1e-4, {})), limit)


def test_listing_tasks_is_polling_and_pages_at_one_instant_are_one_list() -> None:
    # known good: every 5 s, three pages fetched back to back
    good = journal_of(*[(Operation.LIST, t, {"job_id": None}) for t in (0, 0, 0, 5, 5, 10)])
    a.assert_listed_no_faster_than(good, 5)
    assert good.key("k").lists == 6  # type: ignore[union-attr]
    # known bad: a list every 0.05 s
    bad = journal_of(*[(Operation.LIST, i * 0.05, {"job_id": None}) for i in range(100)])
    with pytest.raises(AssertionError, match=r"listed its tasks 0.050 s apart \(at t\+[0-9.]+ s: "
                                             r"GET /x.*"
                                             r"wait at least 1 s.*minimum poll interval"):
        a.assert_listed_no_faster_than(bad, 1)


def test_a_refused_cancel_sent_again_at_once_is_hammering() -> None:
    cancels = [(Operation.CANCEL, t, {"status": 400, "phase": Phase.RUNNING})
               for t in (30, 30.05, 30.1)]
    hammer = journal_of((Operation.SUBMIT, 0, {"phase": Phase.QUEUED}), *cancels)
    with pytest.raises(AssertionError, match=r"cancelled 0\.050 s apart \(3 cancels\)"):
        a.assert_cancelled_no_faster_than(hammer, 1)
    spaced = journal_of((Operation.SUBMIT, 0, {"phase": Phase.QUEUED}),
                        (Operation.CANCEL, 30, {"status": 400, "phase": Phase.RUNNING}),
                        (Operation.CANCEL, 31, {"status": 400, "phase": Phase.RUNNING}))
    a.assert_cancelled_no_faster_than(spaced, 1)
    a.assert_cancelled_no_faster_than(GOOD, 1)  # no cancel at all
