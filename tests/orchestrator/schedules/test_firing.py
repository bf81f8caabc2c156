"""The firing loop on the real PostgreSQL, with an injected clock: each slot fires
once however many schedulers run, catch-up per policy, and nothing half-done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.schedules import manage, store
from orchestrator.schedules.definition import Schedule
from orchestrator.schedules.tables import schedules
from orchestrator.store import outbox
from orchestrator.store.tables import workflows
from tests.orchestrator.schedules.conftest import (
    add,
    fires,
    make_scheduler,
    schedule,
    workflow_ids,
)

pytestmark = pytest.mark.integration

T0 = datetime(2025, 1, 1, 12, 0, 0, 300_000, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def slot(seconds: int) -> datetime:
    return T0.replace(microsecond=0) + timedelta(seconds=seconds)


def test_a_slot_fires_once_however_many_schedulers_run(
    engine: Engine, playbooks: PlaybookRegistry, namespace: str
) -> None:
    clock = Clock(T0)
    add(engine, schedule("report"), clock.now)
    first = make_scheduler(engine, playbooks, namespace, clock)
    second = make_scheduler(engine, playbooks, namespace, clock)
    assert first.round() == 0  # the first slot is after the schedule was added
    clock.now = T0 + timedelta(seconds=2)
    assert first.round() + second.round() == 1
    assert second.round() + first.round() == 0
    assert fires(engine, "report") == [(slot(2), False, "schedule:report:20250101T120002Z")]
    assert workflow_ids(engine, "report") == ["schedule:report:20250101T120002Z"]
    with engine.connect() as conn:
        row = conn.execute(
            select(workflows.c.type, workflows.c.input).where(
                workflows.c.id == "schedule:report:20250101T120002Z"
            )
        ).one()
        assert outbox.backlog(conn) == 1  # its goal.submitted event, for the relay
    assert row.type == "sched.report"
    assert row.input == {"day": "2025-01-01T12:00:02+00:00"}


def test_a_schedule_another_orchestrator_holds_is_left_to_it(
    engine: Engine, playbooks: PlaybookRegistry, namespace: str
) -> None:
    clock = Clock(T0)
    add(engine, schedule("report"), clock.now)
    clock.now = T0 + timedelta(seconds=2)
    scheduler = make_scheduler(engine, playbooks, namespace, clock)
    with engine.begin() as other:
        assert store.claim_due(other, name="report", now=clock.now) is not None
        assert scheduler.round() == 0  # SKIP LOCKED: the holder fires it
    assert scheduler.round() == 1


def test_a_round_that_does_not_commit_leaves_its_slot_to_the_next(
    engine: Engine, playbooks: PlaybookRegistry, namespace: str
) -> None:
    clock = Clock(T0)
    add(engine, schedule("report"), clock.now)
    clock.now = T0 + timedelta(seconds=2)
    scheduler = make_scheduler(engine, playbooks, namespace, clock)

    def die_before_commit() -> None:
        with engine.begin() as conn:
            row = store.claim_due(conn, name="report", now=clock.now)
            assert row is not None
            assert scheduler._fire(conn, row, clock.now)  # claimed and submitted ...
            raise RuntimeError("the orchestrator died before the commit")

    with pytest.raises(RuntimeError):
        die_before_commit()
    assert fires(engine, "report") == []
    assert workflow_ids(engine, "report") == []
    assert scheduler.round() == 1
    assert [f[0] for f in fires(engine, "report")] == [slot(2)]


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("skip", [(slot(2), False), (slot(12), False)]),
        ("one", [(slot(2), False), (slot(10), True), (slot(12), False)]),
        ({"bounded": 2}, [(slot(2), False), (slot(8), True), (slot(10), True), (slot(12), False)]),
        (
            "all",
            [(slot(2), False), *((slot(s), True) for s in (4, 6, 8, 10)), (slot(12), False)],
        ),
    ],
)
def test_after_downtime_missed_slots_fire_per_policy(
    engine: Engine,
    playbooks: PlaybookRegistry,
    namespace: str,
    catch_up: object,
    expected: list[tuple[datetime, bool]],
) -> None:
    clock = Clock(T0)
    add(engine, schedule("report", catch_up=catch_up), clock.now)
    scheduler = make_scheduler(engine, playbooks, namespace, clock)
    clock.now = T0 + timedelta(seconds=2)
    scheduler.round()
    clock.now = T0 + timedelta(seconds=12)  # down while 4, 6, 8 and 10 came
    scheduler.round()
    scheduler.round()
    assert [(s, late) for s, late, _ in fires(engine, "report")] == expected
    assert len(workflow_ids(engine, "report")) == len(expected)


def test_slots_while_paused_do_not_fire_after_resume(
    engine: Engine, playbooks: PlaybookRegistry, namespace: str
) -> None:
    clock = Clock(T0)
    add(engine, schedule("report", catch_up="all"), clock.now)
    scheduler = make_scheduler(engine, playbooks, namespace, clock)
    with engine.begin() as conn:
        manage.pause(conn, name="report", actor="tester", now=clock.now)
    clock.now = T0 + timedelta(seconds=10)
    assert scheduler.round() == 0
    with engine.begin() as conn:
        resumed = manage.resume(conn, name="report", actor="tester", now=clock.now)
    assert resumed.next_fire_at == slot(12)
    clock.now = T0 + timedelta(seconds=12)
    assert scheduler.round() == 1
    assert [f[0] for f in fires(engine, "report")] == [slot(12)]


def test_a_goal_the_playbook_refuses_is_recorded_not_retried(
    engine: Engine, playbooks: PlaybookRegistry, namespace: str
) -> None:
    clock = Clock(T0)
    broken = schedule("report").spec.model_copy(
        update={"goal": schedule("report").spec.goal.model_copy(update={"input": {"x": 1}})}
    )
    add(engine, Schedule.of("report", broken), clock.now)
    clock.now = T0 + timedelta(seconds=2)
    scheduler = make_scheduler(engine, playbooks, namespace, clock)
    assert scheduler.round() == 0
    assert scheduler.round() == 0
    [(fired_slot, _late, workflow_id)] = fires(engine, "report")
    assert (fired_slot, workflow_id) == (slot(2), None)
    with engine.connect() as conn:
        last_error = conn.execute(select(schedules.c.last_error)).scalar_one()
    assert '"day" is a required property' in last_error
    assert workflow_ids(engine, "report") == []
