"""Request and response bodies of the JSON API, one model per direction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.store.workflow_pages import StatusCount, WorkflowPage, WorkflowSummary
from orchestrator.workflow.state import TaskState, WorkflowState
from waypost.telemetry.tracing import trace_id_of, trace_url

GOAL_TYPE = r"^[a-z][a-z0-9_.-]{0,99}$"


class GoalCreate(BaseModel):
    """A goal to plan into a workflow."""

    type: str = Field(pattern=GOAL_TYPE, examples=["support.ticket"])
    input: dict[str, Any] = Field(
        examples=[{"subject": "Charged twice", "body": "I see two charges for May."}]
    )


class GoalAcceptedPublic(BaseModel):
    """The workflow a goal became."""

    workflow_id: str
    status_url: str


class ErrorPublic(BaseModel):
    """Why an attempt, a step or a workflow failed."""

    type: str
    message: str
    retryable: bool


class AttemptPublic(BaseModel):
    """One dispatch of a task."""

    number: int
    dispatched_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: ErrorPublic | None


class TaskPublic(BaseModel):
    """One step of a workflow."""

    id: str
    step: str
    capability: str
    status: str
    attempt: int
    max_attempts: int
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    confidence: float | None
    reasoning: list[str]
    usage: dict[str, Any] | None
    agent: dict[str, Any] | None
    error: ErrorPublic | None
    attempts: list[AttemptPublic]
    lease_expires_at: datetime | None
    next_attempt_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, task: TaskState) -> TaskPublic:
        """The public view of a task."""
        return cls(
            id=task.id,
            step=task.step,
            capability=task.capability,
            status=task.status.value,
            attempt=task.attempt,
            max_attempts=task.max_attempts,
            input=dict(task.input) if task.input is not None else None,
            output=dict(task.output) if task.output is not None else None,
            confidence=task.confidence,
            reasoning=list(task.reasoning),
            usage=dict(task.usage) if task.usage is not None else None,
            agent=dict(task.agent) if task.agent is not None else None,
            error=ErrorPublic(**task.error.as_dict()) if task.error else None,
            attempts=[
                AttemptPublic(
                    number=a.number,
                    dispatched_at=a.dispatched_at,
                    finished_at=a.finished_at,
                    outcome=a.outcome,
                    error=ErrorPublic(**a.error.as_dict()) if a.error else None,
                )
                for a in task.attempts
            ],
            lease_expires_at=task.lease_expires_at,
            next_attempt_at=task.next_attempt_at,
            finished_at=task.finished_at,
        )


class WorkflowPublic(BaseModel):
    """A workflow with every task."""

    id: str
    type: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    reason: str | None
    failed_step: str | None
    error: ErrorPublic | None
    accepted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tasks: list[TaskPublic]
    trace_id: str | None = Field(None, description="The workflow's OpenTelemetry trace id.")
    trace_url: str | None = Field(
        None, description="The trace in the trace viewer (WAYPOST_TRACE_URL_TEMPLATE)."
    )

    @classmethod
    def of(cls, state: WorkflowState, trace_url_template: str | None = None) -> WorkflowPublic:
        """The public view of a workflow."""
        return cls(
            id=state.id,
            type=state.type,
            status=state.status.value,
            input=dict(state.input),
            output=dict(state.output) if state.output is not None else None,
            reason=state.reason,
            failed_step=state.failed_step,
            error=ErrorPublic(**state.error.as_dict()) if state.error else None,
            accepted_at=state.accepted_at,
            started_at=state.started_at,
            finished_at=state.finished_at,
            tasks=[TaskPublic.of(task) for task in state.tasks.values()],
            trace_id=trace_id_of(state.traceparent),
            trace_url=trace_url(trace_url_template, state.traceparent),
        )


class TriggerPublic(BaseModel):
    """The event that started a workflow (its goal input's `_trigger` record)."""

    event_type: str
    source: str
    workflow_id: str | None = Field(
        None, description="The workflow whose event it was (a cascade)."
    )


class WorkflowSummaryPublic(BaseModel):
    """A workflow in a listing."""

    id: str
    type: str
    status: str
    accepted_at: datetime
    finished_at: datetime | None
    reason: str | None
    started_at: datetime | None = None
    duration_s: float | None = Field(
        None, description="Seconds from started to finished; null until it finished."
    )
    triggered_by: TriggerPublic | None = Field(
        None, description="The event that started it; null for a goal submitted directly."
    )

    @classmethod
    def of(cls, summary: WorkflowSummary) -> WorkflowSummaryPublic:
        """The public view of a listing row."""
        trigger = summary.trigger
        return cls(
            id=summary.id,
            type=summary.type,
            status=summary.status.value,
            accepted_at=summary.accepted_at,
            finished_at=summary.finished_at,
            reason=summary.reason,
            started_at=summary.started_at,
            duration_s=summary.duration.total_seconds() if summary.duration else None,
            triggered_by=TriggerPublic(
                event_type=trigger.event_type,
                source=trigger.source,
                workflow_id=trigger.workflow_id,
            )
            if trigger is not None
            else None,
        )


class StatusCountPublic(BaseModel):
    """How many workflows of one status match the other filters."""

    status: str
    count: int
    capped: bool = Field(
        description="True when counting stopped early: there are at least `count`."
    )


class WorkflowPagePublic(BaseModel):
    """A page of workflows in the order asked for (newest first by default)."""

    items: list[WorkflowSummaryPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
    previous_cursor: str | None = Field(
        None,
        description="Pass as `cursor` to get the page before this one; null on the first.",
    )
    counts: list[StatusCountPublic] | None = Field(
        None,
        description="With `counts=true`: per status, how many workflows match the filters "
        "other than `status`.",
    )

    @classmethod
    def of(cls, page: WorkflowPage, counts: list[StatusCount] | None = None) -> WorkflowPagePublic:
        """The public view of a page (and of the counts, when asked for)."""
        return cls(
            items=[WorkflowSummaryPublic.of(s) for s in page.items],
            next_cursor=page.next_cursor,
            previous_cursor=page.previous_cursor,
            counts=[
                StatusCountPublic(status=c.status, count=c.count, capped=c.capped) for c in counts
            ]
            if counts is not None
            else None,
        )
