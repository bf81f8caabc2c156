"""Typed bodies of Waypost events, one class per event type (``<Noun><PastVerb>``).

The JSON Schemas in ``schemas/`` are the contract; these models give code typed access to
bodies that already passed their schema. Unknown fields are kept (tolerant reader), so a
newer producer's extra field does not break an older consumer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

RiskLevel = Literal["low", "medium", "high", "critical"]  # as governance policies name them


class Payload(BaseModel):
    """Base of every event body; ``TYPE`` is the event type without the ``waypost.`` prefix."""

    model_config = ConfigDict(frozen=True, extra="allow")
    TYPE: ClassVar[str]

    def partition_key(self) -> str | None:
        """Kafka key for this event; None means "use the event id"."""
        workflow_id = getattr(self, "workflow_id", None)
        return str(workflow_id) if workflow_id is not None else None


class Usage(BaseModel):
    """What one attempt cost."""

    model_config = ConfigDict(frozen=True)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0


class AgentInfo(BaseModel):
    """Which agent worker produced a result."""

    model_config = ConfigDict(frozen=True)
    capability: str
    version: str
    instance: str


class ErrorInfo(BaseModel):
    """Why an attempt failed, and whether trying again could help."""

    model_config = ConfigDict(frozen=True)
    type: str
    message: str
    retryable: bool


class TaskRef(Payload):
    """Fields every task event carries."""

    workflow_id: str
    task_id: str
    step: str
    capability: str
    attempt: int = Field(ge=1)


class GoalSubmitted(Payload):
    """A goal to plan; the envelope's id is the goal (and workflow) id."""

    TYPE = "goal.submitted"
    type: str
    input: dict[str, Any]


class ApprovalGrant(BaseModel):
    """A reviewer approved an action a policy held for approval: the task may take
    ``action`` with the parameters whose digest is ``params_digest``."""

    model_config = ConfigDict(frozen=True)
    action: str
    params_digest: str
    approved_by: str
    escalation_id: str


class TaskDispatched(TaskRef):
    """A task handed to the agents of its capability."""

    TYPE = "task.dispatched"
    goal_type: str
    input: dict[str, Any]
    deadline: str
    approvals: list[ApprovalGrant] | None = None  # None: no action of this task approved

    def partition_key(self) -> str:
        """Tasks spread over partitions by task id."""
        return self.task_id


class TaskCompleted(TaskRef):
    """An agent's output for one attempt."""

    TYPE = "task.completed"
    output: dict[str, Any]
    confidence: float = Field(ge=0, le=1)
    reasoning: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    agent: AgentInfo
    escalate: str | None = None  # the agent asks for a human, saying why


class RuleInfo(BaseModel):
    """The governance rule that decided: policy name, file, version and digest, rule path
    and line."""

    model_config = ConfigDict(frozen=True)
    policy: str
    file: str
    version: int = Field(ge=1)
    digest: str
    path: str = ""
    line: int | None = None


class ApprovalRequest(BaseModel):
    """An action the agent proposed that a policy lets run only with a human's approval;
    its parameters travel by digest and size, never themselves."""

    model_config = ConfigDict(frozen=True)
    action: str
    params_digest: str
    params_size: int = Field(ge=0)
    scopes: list[str] = Field(default_factory=list)
    reason: str
    rule: RuleInfo | None = None
    risk: RiskLevel = "low"
    approvals: int = Field(1, ge=1)  # different reviewers who must approve (2: four eyes)


class TaskFailed(TaskRef):
    """An attempt that did not produce an output."""

    TYPE = "task.failed"
    error: ErrorInfo
    reasoning: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    agent: AgentInfo
    # Set when the attempt stopped for an action that waits for a reviewer's approval.
    approval: ApprovalRequest | None = None


class TaskEscalated(TaskRef):
    """A task now waits for a reviewer."""

    TYPE = "task.escalated"
    escalation_id: str
    reason: str
    version: int
    digest: str
    priority: int | None = None
    due_at: str | None = None


class DecisionRecorded(Payload):
    """A reviewer's decision, bound to the escalation version and digest they saw."""

    TYPE = "decision.recorded"
    escalation_id: str
    workflow_id: str
    task_id: str
    action: Literal["approve", "edit", "reject", "retry", "comment"]
    reviewer: str
    version: int
    digest: str
    output: dict[str, Any] | None = None
    reason: str | None = None
    comment: str | None = None


class WorkflowStarted(Payload):
    """A goal became a workflow of these steps."""

    TYPE = "workflow.started"
    workflow_id: str
    type: str
    steps: list[str]


class WorkflowCompleted(Payload):
    """Every step finished; the playbook's output mapping applied."""

    TYPE = "workflow.completed"
    workflow_id: str
    type: str
    output: dict[str, Any]
    duration_ms: float | None = None


class DeadLetterRef(BaseModel):
    """A dead letter whose replay resumes a failed workflow: the task's last dispatch, on
    ``topic`` as event ``event_id``."""

    model_config = ConfigDict(frozen=True)
    topic: str
    event_id: str
    task_id: str
    attempt: int


class WorkflowFailed(Payload):
    """A workflow stopped without completing."""

    TYPE = "workflow.failed"
    workflow_id: str
    type: str
    reason: str
    step: str | None = None
    error: ErrorInfo | None = None
    dead_letter: DeadLetterRef | None = None


class TaskAttemptRef(BaseModel):
    """One attempt of a task: which workflow, step, capability and attempt."""

    model_config = ConfigDict(frozen=True)
    workflow_id: str
    task_id: str
    step: str
    capability: str
    attempt: int = Field(ge=1)


class WorkflowCancelled(Payload):
    """A person cancelled a workflow before it finished; ``tasks`` were dispatched and
    may still be running."""

    TYPE = "workflow.cancelled"
    workflow_id: str
    type: str
    reason: str
    cancelled_by: str
    tasks: list[TaskAttemptRef] = Field(default_factory=list)


class NoticeInfo(BaseModel):
    """A budget at or past a level, as carried by ``policy.decided``."""

    model_config = ConfigDict(frozen=True)
    level: Literal["warning", "exhausted"]
    period: Literal["day", "workflow"]
    resource: Literal["tokens", "cost_usd"]
    limit: float = Field(ge=0)
    spent: float
    projected: float
    rule: RuleInfo


class GovernanceEvent(Payload):
    """Fields every event of the governance topic carries; keyed by agent."""

    agent: str
    capability: str
    workflow_id: str | None = None
    task_id: str | None = None
    at: str

    def partition_key(self) -> str | None:
        """One agent's governance events stay in order."""
        return self.agent


class PolicyDecided(GovernanceEvent):
    """A policy decision on an action an agent proposed."""

    TYPE = "policy.decided"
    action: str
    outcome: Literal["allow", "deny", "require_approval"]
    cause: str
    reason: str
    rule: RuleInfo | None = None
    context_digest: str
    audit_id: int | None = None
    notices: list[NoticeInfo] = Field(default_factory=list)
    risk: RiskLevel = "low"  # the highest risk level the policies give the action
    approvals: int = Field(1, ge=1)  # different reviewers an approval of it needs


class BudgetLevel(GovernanceEvent):
    """Fields of both budget events."""

    period: Literal["day", "workflow"]
    period_key: str  # the UTC date, or the workflow id
    resource: Literal["tokens", "cost_usd"]
    limit: float = Field(ge=0)
    spent: float  # before the spend that crossed the level
    projected: float  # after it
    rule: RuleInfo


class BudgetThresholdReached(BudgetLevel):
    """An agent's spend crossed a budget's warning level."""

    TYPE = "budget.threshold_reached"


class BudgetExhausted(BudgetLevel):
    """An agent's spend reached a budget's limit: further actions are refused."""

    TYPE = "budget.exhausted"


class DecisionQualityDrifted(Payload):
    """Reviewers rejected (or edited) more of an agent version's escalated results than
    the threshold allows over a window (``orchestrator/quality``); keyed by capability."""

    TYPE = "decision_quality.drifted"
    capability: str
    version: str
    verdict: Literal["rejected", "edited"]
    rate: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    count: int = Field(ge=0)
    decided: int = Field(ge=1)
    window_start: datetime
    window_end: datetime

    def partition_key(self) -> str | None:
        """One capability's quality events stay in order."""
        return self.capability


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.TYPE: cls
    for cls in (
        GoalSubmitted,
        TaskDispatched,
        TaskCompleted,
        TaskFailed,
        TaskEscalated,
        DecisionRecorded,
        WorkflowStarted,
        WorkflowCompleted,
        WorkflowFailed,
        WorkflowCancelled,
        PolicyDecided,
        BudgetThresholdReached,
        BudgetExhausted,
        DecisionQualityDrifted,
    )
}
