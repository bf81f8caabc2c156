"""The escalation page: the workflow around it (timeline and step graph), what the agent
proposed (as untrusted text, next to the goal's input; when every attempt failed, the last
error and the attempts instead), why it escalated, its SLA, similar past decisions, the
comments and the audit history, the forms to decide it (offering only what the reviewer
rules allow), and its place in the inbox list the reviewer came from (``flow.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from orchestrator.planning import store as plan_store
from orchestrator.store import audit
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.store.escalations import SimilarDecision
from orchestrator.workflow.planning import PLAN
from orchestrator.workflow.review import POLICY_APPROVAL, refuse_retry
from orchestrator.workflow.state import (
    Attempt,
    EscalationState,
    EscalationStatus,
    TaskError,
    TaskState,
    WorkflowState,
)
from review_ui.auth import store as auth_store
from review_ui.auth.principal import Principal
from review_ui.auth.roles import ASSIGN, DECIDE
from review_ui.console import svg
from review_ui.console.common import Reader, frame, url_text
from review_ui.console.flow import MOVES_ON, locate
from review_ui.console.query import InboxQuery
from review_ui.console.render import pages, pretty_json
from review_ui.deps import AppState, StateDep
from waypost.events import utcnow
from waypost.telemetry.tracing import trace_id_of, trace_url

router = APIRouter(include_in_schema=False)
# What a reviewer editing a plan writes (orchestrator/planning/plans.py checks it).
PLAN_FORMAT = {
    "steps": [
        {
            "name": "a unique step name",
            "capability": "a capability of the catalogue",
            "depends_on": ["names of steps that finish first"],
            "input": {"field": "a value, $goal.FIELD or $steps.NAME.output.FIELD"},
            "description": "what the step is for",
        }
    ],
    "output": {"optional": "$steps.NAME.output"},
}
NOTICES = {
    "approve": "Approved: the workflow resumes with the agent's output.",
    "edit": "Approved with your edited output.",
    "approval": "Your approval is recorded; a second reviewer must approve before the "
    "workflow resumes.",
    "reject": "Rejected.",
    "retry": "Sent back to the agent for another attempt.",
    "comment": "Comment added.",
    "claim": "Claimed: it is yours now.",
    "unclaim": "Given back to its group.",
    "assign": "Assigned.",
}
DECIDED = "decided"  # the parameter naming the escalation decided just before this one


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of the workflow on the timeline."""

    name: str
    capability: str
    status: str
    attempt: int
    max_attempts: int
    attempts: tuple[Attempt, ...]
    finished_at: datetime | None
    error: TaskError | None
    depends_on: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DetailView:
    """Everything the escalation page shows."""

    workflow: WorkflowState
    escalation: EscalationState
    summary: str
    steps: tuple[StepView, ...]
    graph: svg.Graph
    sla: str
    similar: Sequence[SimilarDecision]
    comments: Sequence[AuditEntry]
    history: Sequence[AuditEntry]
    users: Sequence[str]
    output_schema: Mapping[str, Any] | None
    trace_id: str | None = None
    trace_url: str | None = None  # the workflow's trace in the trace viewer
    plan_graph: svg.Graph | None = None  # a plan escalation's proposed plan, as a picture
    plan_attempts: Sequence[Mapping[str, Any]] = ()  # the planner's prompts and answers

    @property
    def is_plan(self) -> bool:
        """True for a plan escalation (a reviewer approves the LLM planner's plan)."""
        return self.escalation.kind == PLAN

    @property
    def open(self) -> bool:
        """True while a decision can still be made."""
        return self.escalation.status is EscalationStatus.PENDING

    @property
    def content(self) -> Mapping[str, Any]:
        """What the reviewer is shown (what the digest covers)."""
        return self.escalation.content

    @property
    def task(self) -> TaskState | None:
        """The escalated step's task as it is now (None for a plan escalation)."""
        if self.is_plan:
            return None
        return self.workflow.tasks[self.escalation.step]

    @property
    def retry_refused(self) -> str | None:
        """Why the step cannot be retried (no attempt left), None when it can."""
        if self.task is None:
            return "A plan is not retried: approve it, edit it or reject it"
        refusal = refuse_retry(self.escalation, self.task)
        return refusal.message if refusal is not None else None


@dataclass(frozen=True, slots=True)
class Attempted:
    """What the reviewer just submitted, when it was refused: kept so nothing they typed
    is lost, with the reason next to the form it came from."""

    action: str | None = None
    output_text: str | None = None
    reason: str = ""
    comment: str = ""
    message: str | None = None
    errors: tuple[str, ...] = ()
    conflict: str | None = None


def load_detail(
    conn: Connection, state: AppState, escalation_id: str, now: datetime, *, with_users: bool
) -> DetailView | None:
    """The page's data, or None if there is no such escalation."""
    found = escalation_rows.get(conn, escalation_id=escalation_id)
    if found is None:
        return None
    workflow, escalation = found
    playbook = state.reviews.versions.for_state(conn, workflow)
    is_plan = escalation.kind == PLAN
    if playbook is not None:
        order = [(s.name, tuple(s.depends_on)) for s in playbook.steps]
        schema = None if is_plan else playbook.step(escalation.step).output_schema
    else:  # the version is gone: show the tasks as stored, without their edges
        order = [(name, ()) for name in workflow.tasks]
        schema = None
    steps = tuple(_step(workflow, name, deps) for name, deps in order if name in workflow.tasks)
    history = audit.for_escalation(conn, escalation_id=escalation_id)
    return DetailView(
        workflow=workflow,
        escalation=escalation,
        summary=escalation_rows.summary(escalation.content),
        steps=steps,
        graph=svg.layout(order, {s.name: s.status for s in steps}, current=escalation.step),
        sla=sla_state(escalation, now),
        similar=escalation_rows.similar(conn, escalation_id=escalation_id),
        comments=[entry for entry in history if entry.action == "comment"],
        history=history,
        users=[u.name for u in auth_store.list_users(conn) if not u.disabled] if with_users else [],
        output_schema=schema,
        trace_id=trace_id_of(workflow.traceparent),
        trace_url=trace_url(state.settings.trace_url_template, workflow.traceparent),
        plan_graph=plan_picture(escalation.content.get("output")) if is_plan else None,
        plan_attempts=plan_store.attempts_of(conn, workflow_id=workflow.id) if is_plan else (),
    )


def plan_picture(plan: Any) -> svg.Graph | None:
    """The picture of a proposed plan's steps and what each depends on (None when the
    content holds no list of named steps)."""
    steps = plan.get("steps") if isinstance(plan, Mapping) else None
    if not isinstance(steps, list):
        return None
    order = [
        (str(step["name"]), tuple(str(d) for d in step.get("depends_on") or ()))
        for step in steps
        if isinstance(step, Mapping) and "name" in step
    ]
    names = {name for name, _ in order}
    order = [(name, tuple(d for d in deps if d in names)) for name, deps in order]
    return svg.layout(order, {name: "pending" for name, _ in order}, current=None)


def sla_state(escalation: EscalationState, now: datetime) -> str:
    """ok, warning (close to the deadline) or overdue."""
    if escalation.overdue or escalation.due_at <= now:
        return "overdue"
    return "warning" if escalation.warn_at <= now else "ok"


def render_detail(
    request: Request,
    state: AppState,
    principal: Principal,
    escalation_id: str,
    *,
    origin: InboxQuery | None = None,
    attempted: Attempted | None = None,
    notice: str | None = None,
    decided: str | None = None,
    status: int = 200,
    oob: Sequence[str] = (),
    block: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The escalation page (or, for htmx, ``block`` or else the block it targets), in the
    inbox list ``origin``; ``decided``: the escalation decided just before, whose
    decision ``notice`` tells."""
    now = utcnow()
    origin = origin or InboxQuery()
    with state.engine.begin() as conn:
        view = load_detail(conn, state, escalation_id, now, with_users=principal.may(ASSIGN))
        flow = locate(conn, principal, origin, escalation_id, now)
        before = escalation_rows.rows_by_id(conn, ids=[decided]).get(decided) if decided else None
    if view is None:
        context = frame(
            principal,
            status=404,
            title="Escalation not found",
            detail=f"There is no escalation {escalation_id!r}; it may have been mistyped.",
        )
        return pages().render(request, "error.html", context, status=404)
    context = frame(
        principal,
        view=view,
        esc=view.escalation,
        content=view.content,
        base_url="/escalations/" + quote(escalation_id, safe=""),
        page_url=origin.escalation_url(escalation_id),
        form_url=lambda path: origin.escalation_url(escalation_id, "/" + path),
        flow=flow,
        now=now,
        attempted=attempted or Attempted(),
        notice=NOTICES.get(notice or ""),
        decided_summary=before.summary if before is not None else None,
        last_one=notice in MOVES_ON and flow.next_url is None,
        # Reviewers who may decide read (and edit) the output in the edit form's field:
        # the JSON is shown once.
        editable=view.open and principal.may(DECIDE) and view.escalation.kind != POLICY_APPROVAL,
        # Nothing to show when every attempt failed: the reviewer writes the output.
        output_text=pretty_json(output) if (output := view.content.get("output")) else "{}",
        schema_text=pretty_json(PLAN_FORMAT)
        if view.is_plan
        else pretty_json(view.output_schema)
        if view.output_schema
        else None,
    )
    return pages().render(
        request, "escalation.html", context, status=status, oob=oob, block=block, headers=headers
    )


@router.get("/escalations/{escalation_id}")
def escalation_page(
    escalation_id: str,
    request: Request,
    state: StateDep,
    principal: Reader,
    notice: str | None = None,
) -> Response:
    """One escalation, ready to decide, in the inbox list it was opened from (``from``)."""
    return render_detail(
        request,
        state,
        principal,
        escalation_id,
        origin=InboxQuery.origin(request.query_params),
        notice=notice,
        decided=url_text(request.query_params, DECIDED, 200) or None,
    )


def _step(workflow: WorkflowState, name: str, depends_on: tuple[str, ...]) -> StepView:
    task = workflow.tasks[name]
    return StepView(
        name=name,
        capability=task.capability,
        status=task.status.value,
        attempt=task.attempt,
        max_attempts=task.max_attempts,
        attempts=task.attempts,
        finished_at=task.finished_at,
        error=task.error,
        depends_on=depends_on,
    )
