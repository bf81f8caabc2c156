"""Converting between workflow/task rows and the state machine's values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row

from orchestrator.workflow.state import (
    Attempt,
    DeadLetter,
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)


def workflow_fields(state: WorkflowState) -> dict[str, Any]:
    """The mutable columns of a workflow row."""
    return {
        "status": state.status.value,
        "output": to_json(state.output),
        "reason": state.reason,
        "failed_step": state.failed_step,
        "error": to_json(state.error.as_dict() if state.error is not None else None),
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "playbook_digest": state.playbook_digest,
        "dead_letter": to_json(state.dead_letter.as_dict() if state.dead_letter else None),
    }


def task_fields(task: TaskState) -> dict[str, Any]:
    """The columns of a task row (without id, workflow_id, position)."""
    return {
        "step": task.step,
        "capability": task.capability,
        "status": task.status.value,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "input": to_json(task.input),
        "output": to_json(task.output),
        "confidence": task.confidence,
        "reasoning": to_json(list(task.reasoning)),
        "usage": to_json(task.usage),
        "agent": to_json(task.agent),
        "error": to_json(task.error.as_dict() if task.error is not None else None),
        "attempts": to_json([attempt_json(a) for a in task.attempts]),
        "proposal": to_json(task.proposal),
        "first_valid_attempt": task.first_valid_attempt,
        "lease_expires_at": task.lease_expires_at,
        "next_attempt_at": task.next_attempt_at,
        "finished_at": task.finished_at,
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "dispatched_at": attempt.dispatched_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "outcome": attempt.outcome,
        "error": attempt.error.as_dict() if attempt.error else None,
        **({"capability": attempt.capability} if attempt.capability else {}),
    }


def workflow_state(
    row: Row[Any],
    task_states: dict[str, TaskState],
    escalations: dict[str, EscalationState] | None = None,
) -> WorkflowState:
    """A workflow row and its tasks as state."""
    return WorkflowState(
        id=row.id,
        type=row.type,
        status=WorkflowStatus(row.status),
        input=row.input,
        accepted_at=row.accepted_at,
        tasks=task_states,
        output=row.output,
        reason=row.reason,
        failed_step=row.failed_step,
        error=error_of(row.error),
        started_at=row.started_at,
        finished_at=row.finished_at,
        traceparent=row.traceparent,
        tracestate=row.tracestate,
        playbook_digest=row.playbook_digest,
        escalations=escalations or {},
        dead_letter=dead_letter_of(row.dead_letter),
    )


def task_state(row: Row[Any]) -> TaskState:
    """A task row as state."""
    return TaskState(
        id=row.id,
        step=row.step,
        capability=row.capability,
        status=TaskStatus(row.status),
        max_attempts=row.max_attempts,
        attempt=row.attempt,
        input=row.input,
        output=row.output,
        confidence=row.confidence,
        reasoning=tuple(row.reasoning or ()),
        usage=row.usage,
        agent=row.agent,
        error=error_of(row.error),
        lease_expires_at=row.lease_expires_at,
        next_attempt_at=row.next_attempt_at,
        finished_at=row.finished_at,
        attempts=tuple(
            Attempt(
                number=a["number"],
                dispatched_at=datetime.fromisoformat(a["dispatched_at"]),
                finished_at=datetime.fromisoformat(a["finished_at"]) if a["finished_at"] else None,
                outcome=a["outcome"],
                error=error_of(a["error"]),
                capability=a.get("capability"),
            )
            for a in row.attempts
        ),
        proposal=row.proposal,
        first_valid_attempt=row.first_valid_attempt,
    )


def error_of(data: Mapping[str, Any] | None) -> TaskError | None:
    """A stored error, or None."""
    if data is None:
        return None
    return TaskError(data["type"], data["message"], data.get("retryable", True))


def dead_letter_of(data: Mapping[str, Any] | None) -> DeadLetter | None:
    """A stored dead-letter pointer, or None."""
    if data is None:
        return None
    return DeadLetter(data["topic"], data["event_id"], data["task_id"], data["attempt"])


def arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise lists of row dicts (all rows have the same keys)."""
    return {name: [row[name] for row in rows] for name in rows[0]}


def to_json(value: Any) -> str | None:
    """JSON text for a jsonb parameter (None stays NULL)."""
    return None if value is None else orjson.dumps(value).decode()


def escalation_fields(escalation: EscalationState) -> dict[str, Any]:
    """The mutable columns of an escalation row."""
    decision = escalation.decision
    return {
        "status": escalation.status.value,
        "priority": escalation.priority,
        "group_name": escalation.group,
        "assignee": escalation.assignee,
        "claimed_at": escalation.claimed_at,
        "version": escalation.version,
        "digest": escalation.digest,
        "content": to_json(dict(escalation.content)),
        "due_at": escalation.due_at,
        "warn_at": escalation.warn_at,
        "overdue": escalation.overdue,
        "decision": to_json(decision_json(decision)) if decision is not None else None,
        "resolved_at": escalation.resolved_at,
        "required_approvals": escalation.required_approvals,
        "approvals": to_json([decision_json(a) for a in escalation.approvals]),
    }


def decision_json(decision: ReviewDecision) -> dict[str, Any]:
    """A reviewer's decision as stored."""
    return {
        "id": decision.id,
        "action": decision.action,
        "reviewer": decision.reviewer,
        "decided_at": decision.decided_at.isoformat(),
        "output": dict(decision.output) if decision.output is not None else None,
        "reason": decision.reason,
    }


def escalation_state(row: Row[Any]) -> EscalationState:
    """An escalation row as state."""
    stored = row.decision
    return EscalationState(
        id=row.id,
        task_id=row.task_id,
        step=row.step,
        attempt=row.attempt,
        kind=row.kind,
        reason=row.reason,
        status=EscalationStatus(row.status),
        priority=row.priority,
        group=row.group_name,
        version=row.version,
        digest=row.digest,
        content=row.content,
        opened_at=row.opened_at,
        due_at=row.due_at,
        warn_at=row.warn_at,
        assignee=row.assignee,
        claimed_at=row.claimed_at,
        overdue=row.overdue,
        decision=decision_of(stored) if stored is not None else None,
        resolved_at=row.resolved_at,
        required_approvals=row.required_approvals,
        approvals=tuple(decision_of(a) for a in row.approvals),
    )


def decision_of(stored: Mapping[str, Any]) -> ReviewDecision:
    """A reviewer's decision (or approval) as stored (``decision_json``)."""
    return ReviewDecision(
        id=stored["id"],
        action=stored["action"],
        reviewer=stored["reviewer"],
        decided_at=datetime.fromisoformat(stored["decided_at"]),
        output=stored["output"],
        reason=stored["reason"],
    )
