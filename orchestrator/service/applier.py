"""Applying inputs to locked workflows: decide, save the new state, queue its events.

Shared by the intake (results and goals from Kafka), the reconciler (timers, stale
goals) and goal submission, so every path changes state the same way: in the caller's
transaction, state and outgoing events together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.service.outgoing import Outgoing
from orchestrator.store import outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.workflow.machine import Environment, decide
from orchestrator.workflow.messages import Input
from orchestrator.workflow.retry import RetryPolicy
from orchestrator.workflow.state import WorkflowState

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Applied:
    """What one application did."""

    applied: int = 0
    ignored: int = 0
    published: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Applier:
    """Decides and persists; the caller owns the transaction and the row locks."""

    playbooks: PlaybookRegistry
    outgoing: Outgoing
    random: Callable[[], float]
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def apply(
        self,
        conn: Connection,
        *,
        states: MutableMapping[str, WorkflowState],
        inputs: Sequence[tuple[str, Input]],
        now: datetime,
        notify_channel: str | None = None,
    ) -> Applied:
        """Apply inputs in order to locked ``states``; write changes and their events."""
        before = dict(states)
        result = Applied()
        records = []
        for workflow_id, event in inputs:
            state = states.get(workflow_id)
            if state is None:
                result.ignored += 1
                result.notes.append(f"{type(event).__name__} for unknown workflow {workflow_id}")
                continue
            decision = decide(state, event, self._environment(state, now))
            if not decision.applied:
                result.ignored += 1
                if decision.note:
                    result.notes.append(f"{workflow_id}: {decision.note}")
                continue
            result.applied += 1
            states[workflow_id] = decision.state
            records.extend(self.outgoing.for_commands(decision.state, decision.commands))
        workflow_rows.save(conn, before=before, after=states, now=now)
        outbox.enqueue(conn, records=records, notify_channel=notify_channel)
        result.published = len(records)
        for note in result.notes:
            log.info("not applied: %s", note)
        return result

    def _environment(self, state: WorkflowState, now: datetime) -> Environment:
        return Environment(
            playbook=self.playbooks.get(state.type),
            now=now,
            random=self.random,
            retry=self.retry,
            known_types=self.playbooks.types(),
        )
