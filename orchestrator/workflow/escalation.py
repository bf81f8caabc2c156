"""Opening an escalation (pure): the one sequence every path that asks a person takes.

A result that must wait for a reviewer (``machine``), an action a governance policy holds
for approval (``approvals``) and a step whose every attempt failed (``fallback``) all
end here: the task waits as ``awaiting_review``, and the escalation opens with exactly
what the reviewer is shown (its *content*), the SHA-256 of that content (its *digest*),
an id derived from the task and how many escalations it had (so a redelivered input
cannot open a second one), its SLA deadline, a ``task.escalated`` announcement and an
``opened`` audit entry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from orchestrator.playbooks import summary
from orchestrator.playbooks.model import Step
from orchestrator.workflow.messages import AnnounceTaskEscalated, Decision, RecordReviewEvent
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskState,
    TaskStatus,
    WorkflowState,
)

OPENED_BY = "waypost"  # the actor of an escalation's ``opened`` audit entry
_NAMESPACE = uuid.UUID("9a3c0f4e-7f0b-4f0e-9e7b-2f6d1c8a5b13")


def canonical_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what a reviewer is shown (sorted keys, no spaces)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def escalation_id(task_id: str, number: int) -> str:
    """The id of a task's ``number``-th escalation (stable across redeliveries)."""
    return str(uuid.uuid5(_NAMESPACE, f"{task_id}#{number}"))


def escalate(
    state: WorkflowState,
    task: TaskState,
    step: Step,
    *,
    attempt: int,
    kind: str,
    reason: str,
    shown: Mapping[str, Any],
    now: datetime,
    approvals: int = 1,
) -> Decision:
    """``task`` (as the caller changed it) waits for a reviewer: open its escalation of
    ``kind`` at version 1 with the step's group, priority and SLA, announce it and record
    its opening. Its content is the task's context plus ``shown`` (the output, or what
    stands in for one, and whatever else the reviewer needs), and the step's ``summary``
    line when it has one. It needs the approval of the step's ``review.approvals``
    reviewers, or of ``approvals`` if that is more (a policy's four eyes)."""
    content = {
        "workflow_id": state.id,
        "goal_type": state.type,
        "step": task.step,
        "capability": task.capability,
        "attempt": attempt,
        "goal_input": dict(state.input),
        "task_input": dict(task.input or {}),
        **shown,
        "reason": reason,
    }
    if step.summary:
        # Rendered once, as the escalation opens: the digest covers the line the inbox shows.
        content["summary"] = summary.render(step.summary, content)
    number = 1 + sum(1 for e in state.escalations.values() if e.task_id == task.id)
    due = now + timedelta(seconds=step.review.sla_s)
    escalation = EscalationState(
        id=escalation_id(task.id, number),
        task_id=task.id,
        step=task.step,
        attempt=attempt,
        kind=kind,
        reason=reason,
        status=EscalationStatus.PENDING,
        priority=step.review.priority,
        group=step.review.group,
        version=1,
        digest=canonical_digest(content),
        content=content,
        opened_at=now,
        due_at=due,
        warn_at=due - timedelta(seconds=step.review.warning_s),
        required_approvals=max(step.review.approvals, approvals),
    )
    waiting = task.evolve(
        status=TaskStatus.AWAITING_REVIEW, lease_expires_at=None, next_attempt_at=None
    )
    return Decision(
        state.with_task(waiting).with_escalation(escalation),
        (
            AnnounceTaskEscalated(escalation),
            RecordReviewEvent(escalation, "opened", OPENED_BY, {"reason": reason}),
        ),
    )
