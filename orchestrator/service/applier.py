"""Applying inputs to locked workflows: decide, save the new state, queue its events.

Shared by the intake (results and goals from Kafka), the reconciler (timers, stale
goals) and goal submission, so every path changes state the same way: in the caller's
transaction, state, outgoing events and circuit breakers together.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.trace import Span
from sqlalchemy import Connection

from orchestrator.playbooks.model import Playbook
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.outbox import OutboxRows
from orchestrator.publishing.records import Outgoing
from orchestrator.service.breakers import Breakers
from orchestrator.service.observations import Observation, observe
from orchestrator.store import audit, outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.breaker import BreakerPolicy, CircuitBook
from orchestrator.workflow.machine import Environment, decide
from orchestrator.workflow.messages import (
    Command,
    GoalAccepted,
    Input,
    RecordReviewEvent,
    StorePlan,
)
from orchestrator.workflow.retry import RetryPolicy
from orchestrator.workflow.state import EscalationState, WorkflowState, WorkflowStatus
from waypost.bus.records import OutgoingRecord
from waypost.embeddings import Embedder, HashingEmbedder

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Applied:
    """What one application did; ``outbox`` holds the rows to publish after commit."""

    applied: int = 0
    ignored: int = 0
    outbox: OutboxRows = ()
    notes: list[str] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)


@dataclass
class Applier:
    """Decides and persists; the caller owns the transaction and the row locks."""

    playbooks: PlaybookRegistry
    outgoing: Outgoing
    random: Callable[[], float]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    embedder: Embedder = field(default_factory=HashingEmbedder)
    breakers: BreakerPolicy = field(default_factory=BreakerPolicy)
    versions: PlaybookVersions = field(init=False)
    circuits: Breakers = field(init=False)

    def __post_init__(self) -> None:
        self.versions = PlaybookVersions(self.playbooks)
        self.circuits = Breakers(self.breakers)

    def apply(
        self,
        conn: Connection,
        *,
        states: MutableMapping[str, WorkflowState],
        inputs: Sequence[tuple[str, Input]],
        now: datetime,
        causes: Sequence[Span | None] = (),
    ) -> Applied:
        """Apply inputs in order to locked ``states``; write changes and their events.

        ``causes`` (aligned with ``inputs``) are the spans of the records the inputs came
        from: each input's events are produced in its span's trace context."""
        before = dict(states)
        result = Applied()
        records = []
        entries: list[AuditEntry] = []
        planners: list[Playbook] = []
        book = self.circuits.book(
            conn, capabilities=self._capabilities(conn, states, inputs), now=now
        )
        for index, (workflow_id, event) in enumerate(inputs):
            state = states.get(workflow_id)
            if state is None:
                result.ignored += 1
                result.notes.append(f"{type(event).__name__} for unknown workflow {workflow_id}")
                continue
            playbook = self.versions.for_state(conn, state)
            decision = decide(state, event, self._environment(playbook, now, book))
            if isinstance(event, GoalAccepted) and decision.applied and playbook is not None:
                planners.append(playbook)
            if not decision.applied:
                result.ignored += 1
                if decision.note:
                    result.notes.append(f"{workflow_id}: {decision.note}")
                continue
            result.applied += 1
            states[workflow_id] = decision.state
            for command in decision.commands:
                if isinstance(command, StorePlan):
                    self.versions.adopt(conn, command.plan)
            result.observations.extend(observe(state, event, decision, now))
            with self.outgoing.tracing.within(causes[index] if index < len(causes) else None):
                records.extend(self.outgoing.for_commands(decision.state, decision.commands))
                self.outgoing.trace_commands(decision.state, decision.commands)
            entries.extend(
                _audit_entry(workflow_id, command, now)
                for command in decision.commands
                if isinstance(command, RecordReviewEvent)
            )
        self.versions.remember(conn, planners)
        workflow_rows.save(
            conn,
            before=before,
            after=states,
            now=now,
            embeddings=self._embeddings(before, states),
        )
        self.circuits.save(conn, book, now=now)
        audit.record(conn, entries=entries)
        result.outbox = list(zip(outbox.enqueue(conn, records=records), records, strict=True))
        for note in result.notes:
            log.info("not applied: %s", note)
        return result

    def plan_new(
        self,
        conn: Connection,
        *,
        goals: Sequence[NewWorkflow],
        now: datetime,
        causes: Sequence[Span | None] = (),
    ) -> tuple[Applied, list[str]]:
        """Plan goals in memory and insert the planned workflows in one go.

        Returns what was applied and the ids that already existed: those go through
        ``apply`` (with locks) as a GoalAccepted, which plans a goal accepted over HTTP
        and ignores a repeated one.
        """
        planned: dict[str, tuple[WorkflowState, list[OutgoingRecord]]] = {}
        planners = [p for p in (self.playbooks.get(g.type) for g in goals) if p is not None]
        book = self.circuits.book(
            conn, capabilities=[c for p in planners for c in p.capabilities], now=now
        )
        observations: dict[str, list[Observation]] = {}
        decisions: dict[str, tuple[tuple[Command, ...], Span | None]] = {}
        for index, goal in enumerate(goals):
            if goal.id in planned:
                continue  # the same goal twice in one batch
            accepted = WorkflowState(
                id=goal.id,
                type=goal.type,
                status=WorkflowStatus.ACCEPTED,
                input=goal.input,
                accepted_at=goal.accepted_at,
                traceparent=goal.traceparent,
                tracestate=goal.tracestate,
            )
            playbook = self.playbooks.get(goal.type)
            decision = decide(accepted, GoalAccepted(), self._environment(playbook, now, book))
            observations[goal.id] = observe(accepted, GoalAccepted(), decision, now)
            cause = causes[index] if index < len(causes) else None
            # Spans wait until it is known which goals are new (the others are not sent).
            with self.outgoing.tracing.within(cause):
                records = self.outgoing.for_commands(decision.state, decision.commands)
            planned[goal.id] = (decision.state, records)
            decisions[goal.id] = (decision.commands, cause)
        self.versions.remember(conn, planners)
        inserted = workflow_rows.insert_planned(
            conn, states=[state for state, _ in planned.values()], now=now
        )
        # Goals already recorded were planned in vain: what they did to circuits is void.
        self.circuits.save(conn, book, now=now, workflows=inserted)
        records = [r for wid, (_, rs) in planned.items() if wid in inserted for r in rs]
        for workflow_id in inserted:
            commands, cause = decisions[workflow_id]
            with self.outgoing.tracing.within(cause):
                self.outgoing.trace_commands(planned[workflow_id][0], commands)
        result = Applied(applied=len(inserted))
        result.observations = [o for wid in planned if wid in inserted for o in observations[wid]]
        result.outbox = list(zip(outbox.enqueue(conn, records=records), records, strict=True))
        return result, [wid for wid in planned if wid not in inserted]

    def _embeddings(
        self,
        before: Mapping[str, WorkflowState],
        after: Mapping[str, WorkflowState],
    ) -> dict[str, str]:
        """Vectors of new escalations, for finding similar past decisions."""
        new: list[EscalationState] = [
            escalation
            for workflow_id, state in after.items()
            for escalation_id, escalation in state.escalations.items()
            if escalation_id
            not in (before[workflow_id].escalations if workflow_id in before else {})
        ]
        if not new:
            return {}
        vectors = self.embedder.embed([escalation_text(e.content) for e in new])
        return {
            escalation.id: "[" + ",".join(f"{x:.6f}" for x in vector) + "]"
            for escalation, vector in zip(new, vectors, strict=True)
        }

    def _capabilities(
        self,
        conn: Connection,
        states: Mapping[str, WorkflowState],
        inputs: Sequence[tuple[str, Input]],
    ) -> set[str]:
        """Every capability the inputs' workflows may dispatch to (fallbacks included)."""
        if not self.breakers.enabled:
            return set()
        found: set[str] = set()
        for workflow_id in {workflow_id for workflow_id, _ in inputs}:
            state = states.get(workflow_id)
            if state is None:
                continue
            found.update(task.capability for task in state.tasks.values())
            playbook = self.versions.for_state(conn, state)
            if playbook is not None:
                found.update(playbook.capabilities)
        return found

    def _environment(
        self, playbook: Playbook | None, now: datetime, circuits: CircuitBook
    ) -> Environment:
        return Environment(
            playbook=playbook,
            now=now,
            random=self.random,
            retry=self.retry,
            known_types=self.playbooks.types(),
            topics=self.outgoing.topics,
            circuits=circuits,
        )


def escalation_text(content: Mapping[str, Any]) -> str:
    """What an escalation is about, as text to embed: its goal, task input and output."""
    parts = [content.get("goal_input"), content.get("task_input"), content.get("output")]
    return " ".join(json.dumps(part, ensure_ascii=False) for part in parts if part)


def _audit_entry(workflow_id: str, command: RecordReviewEvent, now: datetime) -> AuditEntry:
    escalation = command.escalation
    return AuditEntry(
        actor=command.actor,
        action=command.action,
        escalation_id=escalation.id,
        workflow_id=workflow_id,
        version=escalation.version,
        digest=escalation.digest,
        detail=command.detail,
        at=now,
    )
