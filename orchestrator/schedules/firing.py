"""The firing loop every orchestrator runs: each round, every due schedule is fired by
exactly one orchestrator.

A round takes each due schedule in a transaction of its own, locked with ``FOR UPDATE
SKIP LOCKED`` (another orchestrator holding it fires it), asks the pure policy which
slots fire, and for each inserts the (schedule, slot) row whose primary key makes the
slot fire once, then submits its goal (``orchestrator.goals.submit``, with a goal id
made of the schedule and the slot) in the same transaction. A crash before the commit
leaves the slot unfired for the next round; after it, the slot is recorded. The goal
events are published after commit (the relay publishes what is left).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from orchestrator import goals
from orchestrator.errors import InvalidGoalInput, UnknownGoalType
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher, OutboxRows
from orchestrator.publishing.records import Outgoing
from orchestrator.schedules import manage, store
from orchestrator.schedules.definition import Schedule
from orchestrator.schedules.files import FileSchedule
from orchestrator.schedules.policy import Fire, plan
from orchestrator.schedules.store import FiredSlot, StoredSchedule
from waypost.bus.records import OutgoingRecord
from waypost.events import new_traceparent
from waypost.outages import Outages, retry_in_place
from waypost.triggers.errors import MappingError

log = logging.getLogger(__name__)

SOURCE = "waypost/schedule"
_ROUND_LIMIT = 100  # schedules per round, and fires per schedule per round


@dataclass
class Scheduler:
    """Syncs the schedule files once, then fires due schedules every ``poll_interval_s``."""

    engine: Engine
    playbooks: PlaybookRegistry
    outgoing: Outgoing
    publisher: OutboxPublisher | None
    clock: Callable[[], datetime]
    files: Sequence[FileSchedule] = ()
    poll_interval_s: float = 1.0
    grace_s: float = 30.0
    outages: Outages = field(default_factory=Outages)
    fired: int = 0

    def run(self, stop: threading.Event) -> None:
        """Sync, then fire rounds until stopped (a database outage is waited out)."""
        synced, _ = retry_in_place(self.sync, outages=self.outages, stop=stop)
        while synced and not stop.is_set():
            try:
                retry_in_place(self.round, outages=self.outages, stop=stop)
            except Exception:
                log.exception("schedule round failed; trying again")
            stop.wait(self.poll_interval_s)

    def sync(self) -> manage.SyncReport:
        """Make the table's file-defined schedules those of the files."""
        with self.engine.begin() as conn:
            report = manage.sync(conn, defined=self.files, now=self.clock())
        for what, names in (
            ("added", report.added),
            ("updated", report.updated),
            ("removed", report.removed),
        ):
            if names:
                log.info("schedule files: %s %s", what, ", ".join(names))
        return report

    def round(self) -> int:
        """Fire every due schedule that no other orchestrator holds; how many slots fired."""
        now = self.clock()
        with self.engine.connect() as conn:
            names = store.due_names(conn, now=now, limit=_ROUND_LIMIT)
        total = 0
        for name in names:
            rows: OutboxRows = []
            with self.engine.begin() as conn:
                row = store.claim_due(conn, name=name, now=now)
                if row is not None:
                    rows = self._fire(conn, row, now)
            if rows and self.publisher is not None:
                # Committed first: the slot is recorded whatever the broker does next.
                self.publisher.publish(rows)
            total += len(rows)
        self.fired += total
        return total

    def _fire(self, conn: Connection, row: StoredSchedule, now: datetime) -> OutboxRows:
        """One schedule's round, in the caller's transaction."""
        try:
            schedule = Schedule.read(row.name, row.definition)
        except ValueError as exc:  # pydantic's ValidationError is one
            # Stored by an older version with other rules: leave it until it is fixed.
            log.error("schedule %r cannot be read, not firing it: %s", row.name, exc)
            store.advance(
                conn,
                name=row.name,
                fired_through=row.fired_through,
                next_fire_at=now + timedelta(minutes=1),
                last_error=f"the definition cannot be read: {exc}",
            )
            return []
        decided = plan(
            schedule.timing,
            schedule.catch_up,
            fired_through=row.fired_through,
            now=now,
            grace=timedelta(seconds=self.grace_s),
            limit=_ROUND_LIMIT,
        )
        rows: list[tuple[int, OutgoingRecord]] = []
        last_error = row.last_error
        for fire in decided.fires:
            outcome, error = self._submit(conn, schedule, fire, now)
            rows.extend(outcome)
            if error is not None or outcome:
                last_error = error
        store.advance(
            conn,
            name=row.name,
            fired_through=decided.fired_through,
            next_fire_at=decided.next_fire_at,
            last_error=last_error,
        )
        return rows

    def _submit(
        self, conn: Connection, schedule: Schedule, fire: Fire, now: datetime
    ) -> tuple[OutboxRows, str | None]:
        """Claim one slot and submit its goal; (outbox rows, why it could not)."""
        error: str | None = None
        goal_input: dict[str, object] = {}
        try:
            goal_input = schedule.goal_input(fire.slot)
            self.playbooks.check_goal(schedule.goal.goal_type, goal_input)
        except (MappingError, UnknownGoalType, InvalidGoalInput) as exc:
            error = str(exc)
        goal_id = schedule.goal_id(fire.slot)
        claimed = store.claim_slot(
            conn,
            fired=FiredSlot(
                schedule=schedule.name,
                slot=fire.slot,
                workflow_id=None if error else goal_id,
                late=fire.late,
                error=error,
                fired_at=now,
            ),
        )
        if not claimed:
            return [], None  # fired already (the key is the backstop of the row lock)
        if error is not None:
            log.warning(
                "schedule %r slot %s submitted no goal: %s", schedule.name, fire.slot, error
            )
            return [], error
        accepted = goals.submit(
            conn,
            goal=goals.GoalSubmission(
                goal_id=goal_id,
                type=schedule.goal.goal_type,
                input=goal_input,
                traceparent=new_traceparent(),
                source=f"{SOURCE}/{schedule.name}",
            ),
            outgoing=self.outgoing,
            now=now,
        )
        log.info(
            "schedule %r fired slot %s%s: workflow %s",
            schedule.name,
            fire.slot.isoformat(),
            " (catch-up)" if fire.late else "",
            goal_id,
        )
        return accepted.outbox, None
