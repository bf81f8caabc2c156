"""A workflow as an A2A task (pure). The task id and context id are the workflow id;
the state follows the workflow:

    accepted                                -> submitted
    running, an escalation waits for review -> input-required (the reason as message)
    running                                 -> working
    completed                               -> completed (each output key an artifact)
    failed                                  -> failed (the reason as message)
    cancelled                               -> canceled (the reason as message)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from a2a.helpers import new_data_artifact, new_data_part, new_text_part
from a2a.types.a2a_pb2 import Artifact, Message, Part, Role, Task, TaskState, TaskStatus

from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    WorkflowState,
    WorkflowStatus,
)

# The states after which a task changes no more, and those message/send stops at.
TERMINAL = frozenset(
    {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED}
)
INTERRUPTED = frozenset({TaskState.TASK_STATE_INPUT_REQUIRED})

_STATES = {
    WorkflowStatus.ACCEPTED: TaskState.TASK_STATE_SUBMITTED,
    WorkflowStatus.PLANNING: TaskState.TASK_STATE_WORKING,
    WorkflowStatus.RUNNING: TaskState.TASK_STATE_WORKING,
    WorkflowStatus.COMPLETED: TaskState.TASK_STATE_COMPLETED,
    WorkflowStatus.FAILED: TaskState.TASK_STATE_FAILED,
    WorkflowStatus.CANCELLED: TaskState.TASK_STATE_CANCELED,
}


def task_of(workflow: WorkflowState) -> Task:
    """The A2A task of a workflow as it is now."""
    task = Task(id=workflow.id, context_id=workflow.id, status=status_of(workflow))
    if workflow.status is WorkflowStatus.COMPLETED:
        task.artifacts.extend(artifacts_of(workflow.output or {}))
    return task


def status_of(workflow: WorkflowState) -> TaskStatus:
    """The task status: its state, why (a message) and since when."""
    waiting = waiting_escalation(workflow)
    working = (WorkflowStatus.RUNNING, WorkflowStatus.PLANNING)
    if workflow.status in working and waiting is not None:
        return _status(
            workflow,
            TaskState.TASK_STATE_INPUT_REQUIRED,
            waiting.opened_at,
            f"step {waiting.step!r} waits for a reviewer: {waiting.reason}",
            {
                "escalation_id": waiting.id,
                "step": waiting.step,
                "kind": waiting.kind,
                "reason": waiting.reason,
            },
            key=waiting.id,
        )
    state = _STATES[workflow.status]
    if workflow.status in (WorkflowStatus.FAILED, WorkflowStatus.CANCELLED):
        reason = workflow.reason or f"the workflow {workflow.status}"
        detail: dict[str, Any] = {"reason": reason}
        if workflow.failed_step is not None:
            detail["failed_step"] = workflow.failed_step
        if workflow.error is not None:
            detail["error"] = workflow.error.as_dict()
        return _status(workflow, state, workflow.finished_at, reason, detail)
    since = workflow.finished_at or workflow.started_at or workflow.accepted_at
    return _status(workflow, state, since)


def waiting_escalation(workflow: WorkflowState) -> EscalationState | None:
    """The oldest escalation of the workflow that waits for a reviewer, if any."""
    pending = [e for e in workflow.escalations.values() if e.status is EscalationStatus.PENDING]
    return min(pending, key=lambda e: (e.opened_at, e.id), default=None)


def artifacts_of(output: Mapping[str, Any]) -> list[Artifact]:
    """One artifact per key of the workflow's output (its id and name are the key)."""
    return [
        new_data_artifact(name, _json(value), artifact_id=name) for name, value in output.items()
    ]


def _status(
    workflow: WorkflowState,
    state: TaskState,
    since: datetime | None,
    text: str | None = None,
    detail: Mapping[str, Any] | None = None,
    *,
    key: str | None = None,
) -> TaskStatus:
    status = TaskStatus(state=state)
    if since is not None:
        status.timestamp.FromDatetime(since)
    if text is not None:
        parts: list[Part] = [new_text_part(text)]
        if detail is not None:
            parts.append(new_data_part(dict(detail)))
        status.message.CopyFrom(
            Message(
                # The same status reads the same every time: its message id is stable.
                message_id=f"{workflow.id}:{key or TaskState.Name(state)}",
                task_id=workflow.id,
                context_id=workflow.id,
                role=Role.ROLE_AGENT,
                parts=parts,
            )
        )
    return status


def _json(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists (protobuf's Value wants them)."""
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value
