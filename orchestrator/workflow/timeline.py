"""A workflow's history as one list of events, oldest first (pure: no I/O).

What the state holds (accepted, started, every dispatch of every step and its result,
finished) is merged with what the audit trail recorded about the workflow (escalations
opened and resolved, reviewers' claims, comments and decisions, operators' cancels,
retries and resumes) and the dead letters its messages became.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from orchestrator.workflow.state import WorkflowState

DECIDE = "decide"  # a reviewer's decision (its action in detail["decision"])
ESCALATION_EVENTS = frozenset({"opened", "resolved", "sla_timeout", "sla_warning"})
REVIEW_EVENTS = frozenset({"claim", "unclaim", "assign", "comment"})


class AuditRecordLike(Protocol):
    """An audit entry of the workflow (orchestrator/store/audit_log.py's records)."""

    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def escalation_id(self) -> str | None: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


class DeadLetterLike(Protocol):
    """A dead letter of the workflow (orchestrator/store/dead_letters.py's rows)."""

    @property
    def id(self) -> int: ...
    @property
    def dead_lettered_at(self) -> datetime: ...
    @property
    def source_topic(self) -> str: ...
    @property
    def error_class(self) -> str | None: ...
    @property
    def task_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One thing that happened to the workflow.

    ``kind``: accepted, started, dispatched, result, escalation, decision, review,
    action (an operator's), dead_letter or finished."""

    at: datetime
    kind: str
    title: str
    step: str | None = None
    attempt: int | None = None
    actor: str | None = None
    escalation_id: str | None = None
    dead_letter_id: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def timeline(
    state: WorkflowState,
    audit: Iterable[AuditRecordLike] = (),
    dead_letters: Iterable[DeadLetterLike] = (),
) -> list[TimelineEvent]:
    """Every event of the workflow, oldest first (ties keep the order above)."""
    events = [TimelineEvent(state.accepted_at, "accepted", f"Goal {state.type} accepted")]
    if state.started_at is not None:
        events.append(TimelineEvent(state.started_at, "started", "Planned; the first steps run"))
    events += _attempts(state)
    events += [_audited(entry, state) for entry in audit]
    events += [_dead_letter(letter, state) for letter in dead_letters]
    if state.finished_at is not None:
        detail = {"reason": state.reason} if state.reason else {}
        events.append(
            TimelineEvent(state.finished_at, "finished", f"Workflow {state.status}", detail=detail)
        )
    return sorted(events, key=lambda event: event.at)


def _attempts(state: WorkflowState) -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    for task in state.tasks.values():
        for attempt in task.attempts:
            capability = attempt.capability or task.capability
            fallback = " (fallback)" if attempt.capability else ""
            events.append(
                TimelineEvent(
                    attempt.dispatched_at,
                    "dispatched",
                    f"{task.step}: attempt {attempt.number} sent to {capability}{fallback}",
                    step=task.step,
                    attempt=attempt.number,
                )
            )
            if attempt.finished_at is None:
                continue
            error = attempt.error
            events.append(
                TimelineEvent(
                    attempt.finished_at,
                    "result",
                    f"{task.step}: attempt {attempt.number} {attempt.outcome or 'ended'}"
                    + (f": {error.type}: {error.message}" if error else ""),
                    step=task.step,
                    attempt=attempt.number,
                )
            )
    return events


def _audited(entry: AuditRecordLike, state: WorkflowState) -> TimelineEvent:
    escalation = state.escalations.get(entry.escalation_id or "")
    step = escalation.step if escalation is not None else entry.detail.get("step")
    where = f"{step}: " if step else ""
    if entry.action == DECIDE:
        verdict = entry.detail.get("decision", "")
        kind, title = "decision", f"{where}{entry.actor} decided {verdict}".rstrip()
    elif entry.action in ESCALATION_EVENTS:
        words = {"opened": "escalation opened", "resolved": "escalation resolved"}
        kind = "escalation"
        title = f"{where}{words.get(entry.action, entry.action.replace('_', ' '))}"
    elif entry.action in REVIEW_EVENTS:
        kind, title = "review", f"{where}{entry.actor}: {entry.action}"
    else:
        kind, title = "action", f"{where}{entry.actor}: {entry.action.replace('_', ' ')}"
    return TimelineEvent(
        entry.at,
        kind,
        title,
        step=str(step) if step else None,
        actor=entry.actor,
        escalation_id=entry.escalation_id,
        detail=dict(entry.detail),
    )


def _dead_letter(letter: DeadLetterLike, state: WorkflowState) -> TimelineEvent:
    task = state.task_by_id(letter.task_id) if letter.task_id else None
    return TimelineEvent(
        letter.dead_lettered_at,
        "dead_letter",
        f"Dead-lettered from {letter.source_topic}: {letter.error_class or 'unknown error'}",
        step=task.step if task is not None else None,
        dead_letter_id=letter.id,
    )
