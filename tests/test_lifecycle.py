import math

import pytest

from wanmock.server.lifecycle import Failure, JobRecord, JobRequest, Slotted, state_at
from wanmock.server.vocab import FailureKind, Phase

REQUEST = JobRequest(model="m", prompt="p", width=512, height=512, seed=1)


def record(**changes: object) -> JobRecord:
    fields: dict[str, object] = dict(
        id="j", provider="p", owner="o", request=REQUEST, created_at=0.0, start_at=10.0,
        end_at=70.0, expires_at=1000.0, evict_at=2000.0, schedule=Slotted("q", 0),
    )
    fields.update(changes)
    return JobRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("t", "phase"),
    [(0, Phase.QUEUED), (9.99, Phase.QUEUED), (10, Phase.RUNNING), (69.99, Phase.RUNNING),
     (70, Phase.SUCCEEDED), (999.99, Phase.SUCCEEDED), (1000, Phase.EXPIRED)],
)
def test_phases_follow_the_timestamps(t: float, phase: Phase) -> None:
    assert state_at(record(), t).phase is phase


def test_failure_replaces_success_at_end() -> None:
    job = record(failure=Failure(FailureKind.MODERATION, "nope"))
    assert state_at(job, 69).phase is Phase.RUNNING
    view = state_at(job, 70)
    assert view.phase is Phase.FAILED and not view.has_result and view.finished_at == 70


def test_cancelled_job_and_its_outcome_after_expiry() -> None:
    job = record(cancelled_at=5.0, start_at=math.inf, end_at=math.inf)
    assert state_at(job, 4).phase is Phase.QUEUED
    assert state_at(job, 5).phase is Phase.CANCELLED
    expired = state_at(job, 1000)
    assert expired.phase is Phase.EXPIRED and expired.outcome is Phase.CANCELLED
    assert state_at(record(), 1000).outcome is Phase.SUCCEEDED


def test_queue_position_only_while_queued() -> None:
    assert state_at(record(), 0, queue_position=3).queue_position == 3
    assert state_at(record(), 20, queue_position=3).queue_position is None


def test_started_and_finished_at() -> None:
    assert state_at(record(), 5).started_at is None
    assert state_at(record(), 20).started_at == 10
    assert state_at(record(), 20).finished_at is None
    assert state_at(record(), 80).finished_at == 70


def test_stuck_job_never_leaves_the_queue_until_expiry() -> None:
    job = record(start_at=math.inf, end_at=math.inf)
    assert state_at(job, 999).phase is Phase.QUEUED
    view = state_at(job, 1000)
    assert view.phase is Phase.EXPIRED and view.outcome is None
