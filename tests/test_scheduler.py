
import pytest

from wanmock.server.scheduler import FifoQueue


def test_single_slot_runs_jobs_back_to_back() -> None:
    q = FifoQueue(concurrency=1)
    schedule = [q.admit(f"j{i}", ready_at=0.0, run_seconds=10.0, now=0.0) for i in range(3)]
    assert schedule == [(0, 0.0, 10.0), (1, 10.0, 20.0), (2, 20.0, 30.0)]
    assert [q.position(s, now=0.0) for s in (1, 2)] == [0, 1]
    assert q.position(2, now=10.0) == 0
    assert q.position(2, now=19.9) == 0 and len(q) == 1
    q.position(2, now=20.0)
    assert len(q) == 0


def test_two_slots_share_the_work() -> None:
    q = FifoQueue(concurrency=2)
    starts = [q.admit(f"j{i}", ready_at=0.0, run_seconds=10.0, now=0.0)[1] for i in range(5)]
    assert starts == [0.0, 0.0, 10.0, 10.0, 20.0]


def test_start_times_never_go_before_an_earlier_job_fifo() -> None:
    q = FifoQueue(concurrency=4)
    _, first, _ = q.admit("slow-ready", ready_at=50.0, run_seconds=1.0, now=0.0)
    _, second, _ = q.admit("fast-ready", ready_at=1.0, run_seconds=1.0, now=0.0)
    assert first == 50.0 and second == 50.0


def test_cancel_moves_the_jobs_behind_forward_but_not_into_the_past() -> None:
    q = FifoQueue(concurrency=1)
    q.admit("a", ready_at=0.0, run_seconds=100.0, now=0.0)
    seq_b, _, _ = q.admit("b", ready_at=0.0, run_seconds=100.0, now=0.0)
    seq_c, start_c, _ = q.admit("c", ready_at=0.0, run_seconds=100.0, now=0.0)
    assert start_c == 200.0
    assert q.cancel(seq_b, now=50.0)
    changed = q.take_changes()
    assert [(s.job_id, s.start, s.end) for s in changed] == [("c", 100.0, 200.0)]
    assert q.position(seq_c, now=60.0) == 0
    # a later admission queues behind c, not in the freed gap
    _, start_d, _ = q.admit("d", ready_at=60.0, run_seconds=10.0, now=60.0)
    assert start_d == 200.0


def test_cancel_when_the_slot_is_idle_starts_the_next_job_now_not_earlier() -> None:
    q = FifoQueue(concurrency=1)
    q.admit("a", ready_at=100.0, run_seconds=10.0, now=0.0)
    seq_b, start_b, _ = q.admit("b", ready_at=0.0, run_seconds=10.0, now=0.0)
    assert start_b == 110.0
    q.cancel(0, now=30.0)
    assert q.position(seq_b, now=30.0) == 0
    q.take_changes()
    assert not q.cancel(12345, now=30.0)  # unknown seq: nothing changes
    assert q.take_changes() == []


def test_pruning_keeps_positions_right_for_long_queues() -> None:
    q = FifoQueue(concurrency=1)
    seqs = [q.admit(f"j{i}", ready_at=0.0, run_seconds=1.0, now=0.0)[0] for i in range(500)]
    assert q.position(seqs[-1], now=0.0) == 498  # job 0 is running, 1..498 wait ahead
    assert q.position(seqs[-1], now=300.5) == 499 - 301
    assert q.position(seqs[-1], now=499.0) == 0


def test_rejects_zero_slots() -> None:
    with pytest.raises(ValueError):
        FifoQueue(0)


def test_a_job_that_expires_while_waiting_leaves_the_queue_at_its_expiry() -> None:
    q = FifoQueue(concurrency=1)
    q.admit("a", ready_at=0.0, run_seconds=100.0, now=0.0)
    q.admit("ghost", ready_at=0.0, run_seconds=100.0, now=0.0, expires_at=50.0)
    seq_c, start_c, _ = q.admit("c", ready_at=0.0, run_seconds=100.0, now=0.0)
    assert start_c == 200.0 and q.position(seq_c, now=49.0) == 1
    assert q.position(seq_c, now=60.0) == 0  # the ghost is gone since t=50
    changed = q.take_changes()
    assert [(s.job_id, s.start) for s in changed] == [("c", 100.0)]  # a's slot frees at 100
    _, start_d, _ = q.admit("d", ready_at=60.0, run_seconds=10.0, now=60.0)
    assert start_d == 200.0 and len(q) == 2


def test_expiries_and_starts_are_played_in_time_order() -> None:
    q = FifoQueue(concurrency=1)
    q.admit("a", ready_at=0.0, run_seconds=10.0, now=0.0)
    q.admit("b", ready_at=0.0, run_seconds=10.0, now=0.0, expires_at=15.0)  # starts at 10: ok
    q.admit("c", ready_at=0.0, run_seconds=10.0, now=0.0, expires_at=5.0)  # ghost from t=5
    seq_d, start_d, _ = q.admit("d", ready_at=0.0, run_seconds=10.0, now=0.0)
    assert start_d == 30.0
    assert q.position(seq_d, now=11.0) == 0  # b started at 10, c left at 5
    assert [(s.job_id, s.start) for s in q.take_changes()] == [("d", 20.0)]
    assert q.busy(11.0) == 1 and q.busy(31.0) == 0
