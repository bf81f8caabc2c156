"""Helpers of the schedule tests: a playbook to schedule, a scheduler, and counting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine, select

from orchestrator.playbooks.loader import load_text as load_playbook
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.schedules import manage
from orchestrator.schedules.definition import Schedule, ScheduleSpec
from orchestrator.schedules.firing import Scheduler
from orchestrator.schedules.store import StoredSchedule
from orchestrator.schedules.tables import schedule_fires
from orchestrator.store.tables import workflows
from waypost.events import default_codec
from waypost.topics import Topics

PLAYBOOK = """\
type: sched.report
input_schema:
  type: object
  required: [day]
  properties: {day: {type: string}}
steps:
  - name: write
    capability: sched-writer
"""


@pytest.fixture
def playbooks() -> PlaybookRegistry:
    return PlaybookRegistry([load_playbook(PLAYBOOK)])


def schedule(name: str, *, catch_up: object = "all", cron: str = "*/2 * * * * *") -> Schedule:
    """A schedule of the test playbook, every 2 s by default."""
    spec = ScheduleSpec.model_validate(
        {
            "cron": cron,
            "catch_up": catch_up,
            "goal": {"type": "sched.report", "input": {"day": "${fire_time}"}},
        }
    )
    return Schedule.of(name, spec)


def add(engine: Engine, item: Schedule, now: datetime) -> StoredSchedule:
    with engine.begin() as conn:
        return manage.add(conn, schedule=item, actor="tester", now=now)


def make_scheduler(
    engine: Engine,
    playbooks: PlaybookRegistry,
    namespace: str,
    clock: Callable[[], datetime],
    publisher: OutboxPublisher | None = None,
    **options: object,
) -> Scheduler:
    return Scheduler(
        engine=engine,
        playbooks=playbooks,
        outgoing=Outgoing(Topics(namespace), default_codec()),
        publisher=publisher,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


def fires(engine: Engine, name: str) -> list[tuple[datetime, bool, str | None]]:
    """(slot, late, workflow id) of every fired slot of a schedule, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(schedule_fires.c.slot, schedule_fires.c.late, schedule_fires.c.workflow_id)
            .where(schedule_fires.c.schedule == name)
            .order_by(schedule_fires.c.slot)
        ).all()
    return [(row.slot, row.late, row.workflow_id) for row in rows]


def workflow_ids(engine: Engine, name: str) -> list[str]:
    """The workflows a schedule's slots made, by id."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(workflows.c.id)
                .where(workflows.c.id.like(f"schedule:{name}:%"))
                .order_by(workflows.c.id)
            ).scalars()
        )
