"""What one task's run becomes: its result event, and the decision-log line and metrics
that account for it. Pure but for the log line and the counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waypost.events import (
    AgentInfo,
    ApprovalRequest,
    ErrorInfo,
    Payload,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    Usage,
)
from waypost.governance import ApprovalRequired
from waypost.governance.events import rule_info
from waypost.runtime.metrics import AgentMetrics
from waypost.sdk import AgentContext, AgentResult
from waypost.telemetry.logs import digest, log_decision, summary

MAX_NOTES = 50
MAX_NOTE_LENGTH = 2000  # schemas/common.v1.json: reasoning items

Outcome = AgentResult[Any] | ErrorInfo | ApprovalRequired


def result_payload(
    who: AgentInfo,
    task: TaskDispatched,
    outcome: Outcome,
    notes: Sequence[str],
    usage: Usage,
) -> Payload:
    """The ``task.completed`` or ``task.failed`` event a run answers its task with."""
    common: dict[str, Any] = {
        "workflow_id": task.workflow_id,
        "task_id": task.task_id,
        "step": task.step,
        "capability": task.capability,
        "attempt": task.attempt,
        "usage": usage,
        "agent": who,
    }
    kept = [note[:MAX_NOTE_LENGTH] for note in notes]
    if isinstance(outcome, ApprovalRequired):
        error = ErrorInfo(type="ApprovalRequired", message=str(outcome), retryable=False)
        return TaskFailed(
            error=error,
            approval=_approval_request(outcome),
            reasoning=kept[:MAX_NOTES],
            **common,
        )
    if isinstance(outcome, ErrorInfo):
        return TaskFailed(error=outcome, reasoning=kept[:MAX_NOTES], **common)
    reasoning = [n[:MAX_NOTE_LENGTH] for n in [*kept, *outcome.reasoning]][:MAX_NOTES]
    return TaskCompleted(
        output=outcome.output.model_dump(mode="json"),
        confidence=outcome.confidence,
        reasoning=reasoning,
        escalate=outcome.escalate[:2000] if outcome.escalate else None,
        **common,
    )


def account(
    who: AgentInfo,
    task: TaskDispatched,
    outcome: Outcome,
    payload: Payload,
    context: AgentContext,
    usage: Usage,
    metrics: AgentMetrics | None,
) -> None:
    """The task's decision-log line (digests, not data) and its metrics."""
    checks = context.governance.checks if context.governance is not None else []
    if isinstance(payload, TaskCompleted):
        kind, confidence = "completed", payload.confidence
        output_digest: str | None = digest(payload.output)
    else:
        assert isinstance(payload, TaskFailed)
        confidence, output_digest = None, None
        kind = "approval_required" if isinstance(outcome, ApprovalRequired) else "failed"
    reasoning = payload.reasoning if isinstance(payload, TaskCompleted | TaskFailed) else []
    log_decision(
        "agent",
        {
            "agent": who.capability,
            "version": who.version,
            "instance": who.instance,
            "workflow_id": task.workflow_id,
            "task_id": task.task_id,
            "step": task.step,
            "attempt": task.attempt,
            "outcome": kind,
            "input_digest": digest(task.input),
            "output_digest": output_digest,
            "confidence": confidence,
            "escalate": payload.escalate if isinstance(payload, TaskCompleted) else None,
            "error": payload.error.type if isinstance(payload, TaskFailed) else None,
            "reasoning": summary(reasoning),
            "policy_checks": checks,
            "duration_ms": round(usage.duration_ms, 3),
        },
    )
    if metrics is not None:
        metrics.task(
            task.capability,
            kind,
            usage.duration_ms / 1000,
            tokens=usage.input_tokens + usage.output_tokens,
            cost_usd=usage.cost_usd,
            agent=who.capability,
            checks=checks,
        )


def _approval_request(error: ApprovalRequired) -> ApprovalRequest | None:
    """What the reviewer is asked to approve (None: not raised by ``ctx.act``, so there is
    no action to approve and the attempt is an ordinary failure)."""
    proposal = error.proposal
    if proposal is None:
        return None
    rule = error.decision.rule
    return ApprovalRequest(
        action=proposal.action,
        params_digest=proposal.params_digest,
        params_size=proposal.params_size,
        scopes=sorted(proposal.scopes),
        reason=error.decision.reason,
        rule=rule_info(rule) if rule is not None else None,
        risk=error.decision.risk,
        approvals=error.decision.approvals,
    )
