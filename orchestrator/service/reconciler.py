"""The reconciler: the timers that make lost messages cost time, never work.

Each tick, in one transaction: tasks whose lease expired without a result are failed
and retried (a crashed agent, or a broker that lost the task or its result); retries
whose backoff passed are dispatched (tasks waiting for a circuit breaker ask it again);
accepted goals that nobody planned in time (a goal event the broker lost) are planned.
Every few seconds it also re-creates missing topics (a broker restarted empty).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.service.applier import Applied, Applier
from orchestrator.service.observations import NO_OBSERVER, Observer
from orchestrator.store import outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.workflow.machine import due_timers
from orchestrator.workflow.messages import GoalAccepted, Input
from orchestrator.workflow.state import TaskStatus, WorkflowState
from waypost.bus.base import Admin, TopicSpec
from waypost.outages import BROKER, Outages, dependency_of, retry_in_place

log = logging.getLogger(__name__)


@dataclass
class Reconciler:
    """Runs timers and topic checks on an interval."""

    engine: Engine
    applier: Applier
    admin: Admin
    topic_specs: Sequence[TopicSpec]
    publisher: OutboxPublisher
    clock: Callable[[], datetime]
    interval_s: float = 1.0
    replan_after_s: float = 30.0
    topic_check_interval_s: float = 10.0
    batch_size: int = 500
    # A reviewer's decision is published right after it is recorded; one not applied
    # after this long lost its event, and is applied from the escalation row instead.
    decision_grace_s: float = 10.0
    metrics: Observer = NO_OBSERVER
    outages: Outages = field(default_factory=Outages)

    def run(self, stop: threading.Event) -> None:
        """Tick until stopped (a database outage is waited out in place; topics are
        checked again once the broker answers)."""
        next_topic_check = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_topic_check:
                next_topic_check = time.monotonic() + self.topic_check_interval_s
                try:
                    self.ensure_topics()
                    self.outages.recovered(BROKER)
                except Exception as error:
                    if dependency_of(error) is None:
                        log.exception("checking the topics failed; retrying")
                    else:
                        self.outages.failed(BROKER, error)
                    next_topic_check = time.monotonic() + self.interval_s
            try:
                done, applied = retry_in_place(self.tick, outages=self.outages, stop=stop)
                while done and applied is not None and applied.applied >= self.batch_size:
                    # A full batch: more may be due right away.
                    done, applied = retry_in_place(self.tick, outages=self.outages, stop=stop)
            except Exception:
                log.exception("reconciler tick failed; retrying")
            stop.wait(self.interval_s)

    def tick(self) -> Applied:
        """Handle every due timer and stale goal (one batch)."""
        now = self.clock()
        with self.engine.begin() as conn:
            states = workflow_rows.lock_due(
                conn, now=now, limit=self.batch_size, decision_grace_s=self.decision_grace_s
            )
            undelivered = self._undelivered(conn, states.values(), now)
            inputs: list[tuple[str, Input]] = [
                (workflow_id, timer)
                for workflow_id, state in states.items()
                for timer in due_timers(
                    state, now, decision_grace_s=self.decision_grace_s, undelivered=undelivered
                )
            ]
            stale = workflow_rows.lock_stale_accepted(
                conn,
                accepted_before=now - timedelta(seconds=self.replan_after_s),
                limit=self.batch_size,
            )
            states.update(stale)
            inputs += [(workflow_id, GoalAccepted()) for workflow_id in stale]
            if not inputs:
                return Applied()
            applied = self.applier.apply(conn, states=states, inputs=inputs, now=now)
        self.metrics.observe(applied.observations)
        if applied.applied:
            log.info(
                "reconciler: %d timer(s) and %d stale goal(s) handled",
                len(inputs) - len(stale),
                len(stale),
            )
        self.publisher.publish(applied.outbox)
        return applied

    def _undelivered(
        self, conn: Connection, states: Iterable[WorkflowState], now: datetime
    ) -> frozenset[str]:
        """Tasks whose lease ran out while their dispatch still waits in the outbox."""
        expired = [
            task
            for state in states
            for task in state.tasks.values()
            if task.status is TaskStatus.DISPATCHED
            and task.lease_expires_at is not None
            and task.lease_expires_at <= now
        ]
        topics = {self.applier.outgoing.topics.tasks(task.capability) for task in expired}
        return frozenset(
            outbox.pending_keys(conn, topics=sorted(topics), keys=[t.id for t in expired])
        )

    def ensure_topics(self) -> None:
        """Create missing topics (after a broker lost its data, or on first start)."""
        created = self.admin.ensure_topics(self.topic_specs)
        if created:
            log.warning("created %d missing topic(s): %s", len(created), ", ".join(created))
