"""Changing schedules and syncing the YAML-defined ones, audited, on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from orchestrator.schedules import manage, store
from orchestrator.schedules.errors import ScheduleConflict, ScheduleNotFound
from orchestrator.schedules.files import FileSchedule
from orchestrator.store import audit
from tests.orchestrator.schedules.conftest import add, schedule

pytestmark = pytest.mark.integration

NOW = datetime(2025, 1, 1, 12, 0, 0, 300_000, tzinfo=UTC)


def sync(engine: Engine, defined: list[FileSchedule], now: datetime = NOW) -> manage.SyncReport:
    with engine.begin() as conn:
        return manage.sync(conn, defined=defined, now=now)


def test_sync_adds_updates_and_removes_file_schedules_keeping_their_state(engine: Engine) -> None:
    report = sync(
        engine, [FileSchedule(schedule("a"), "a.yaml"), FileSchedule(schedule("b"), "b.yaml")]
    )
    assert report.added == ("a", "b")
    with engine.begin() as conn:
        manage.pause(conn, name="a", actor="ops", now=NOW)
    changed = schedule("a", cron="0 * * * *")
    report = sync(engine, [FileSchedule(changed, "a.yaml")], NOW + timedelta(seconds=5))
    assert (report.updated, report.removed) == (("a",), ("b",))
    with engine.connect() as conn:
        row = store.get(conn, name="a")
        assert store.get(conn, name="b") is None
        actions = [e.action for e in audit.recent(conn, limit=10)]
    assert row is not None
    assert row.paused
    assert row.source == "file"
    assert row.file == "a.yaml"
    assert row.definition["cron"] == "0 * * * *"
    assert row.fired_through == NOW  # its decided slots stay decided
    assert sorted(actions) == sorted(
        [
            "schedule.created",
            "schedule.created",
            "schedule.paused",
            "schedule.updated",
            "schedule.removed",
        ]
    )
    assert sync(engine, [FileSchedule(changed, "a.yaml")]) == manage.SyncReport()


def test_sync_leaves_an_api_schedule_of_the_same_name_alone(engine: Engine) -> None:
    add(engine, schedule("a", cron="0 * * * *"), NOW)
    report = sync(engine, [FileSchedule(schedule("a"), "a.yaml")])
    assert report.refused == ("a",)
    with engine.connect() as conn:
        row = store.get(conn, name="a")
    assert row is not None
    assert row.source == "api"
    assert row.definition["cron"] == "0 * * * *"


def test_changes_are_refused_with_the_reason(engine: Engine) -> None:
    add(engine, schedule("a"), NOW)
    sync(engine, [FileSchedule(schedule("f"), "dir/schedules/f.yaml")])
    with pytest.raises(ScheduleConflict, match="'a' exists already"), engine.begin() as conn:
        manage.add(conn, schedule=schedule("a"), actor="x", now=NOW)
    with (
        pytest.raises(ScheduleConflict, match=r"f\.yaml; remove it from that file"),
        engine.begin() as conn,
    ):
        manage.remove(conn, name="f", actor="x", now=NOW)
    with pytest.raises(ScheduleNotFound, match="no schedule named 'nope'"), engine.begin() as conn:
        manage.pause(conn, name="nope", actor="x", now=NOW)


def test_every_change_is_audited_with_who_made_it(engine: Engine) -> None:
    add(engine, schedule("a"), NOW)
    with engine.begin() as conn:
        manage.pause(conn, name="a", actor="alice", now=NOW)
        manage.pause(conn, name="a", actor="alice", now=NOW)  # no change, no entry
        manage.resume(conn, name="a", actor="bob", now=NOW)
        manage.remove(conn, name="a", actor="carol", now=NOW)
        entries = audit.recent(
            conn,
            actions=["schedule.paused", "schedule.resumed", "schedule.removed", "schedule.created"],
        )
    assert sorted((e.actor, e.action) for e in entries) == [
        ("alice", "schedule.paused"),
        ("bob", "schedule.resumed"),
        ("carol", "schedule.removed"),
        ("tester", "schedule.created"),
    ]
    assert all(e.detail["schedule"] == "a" for e in entries)
