"""The workflow page's data: the workflow with its step graph, every step with its
attempts, its escalations, dead letters and timeline, what started it, its trace, and
the LLM planner's attempts when a model planned it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from orchestrator.planning import store as plan_store
from orchestrator.playbooks.model import TRIGGER_KEY
from orchestrator.workflow.state import TaskState, WorkflowState
from review_ui import workflow_history
from review_ui.console import svg
from review_ui.deps import AppState
from review_ui.workflow_history import WorkflowHistory
from waypost.telemetry.tracing import trace_id_of, trace_url


@dataclass(frozen=True, slots=True)
class StepDetail:
    """One step of the workflow, in playbook order, with what it depends on."""

    task: TaskState
    depends_on: tuple[str, ...]

    @property
    def agent_version(self) -> str | None:
        """The version of the agent whose result the step kept, when it reported one."""
        agent = self.task.agent or {}
        version = agent.get("version")
        return str(version) if version is not None else None


@dataclass(frozen=True, slots=True)
class WorkflowDetail:
    """Everything the workflow page shows."""

    history: WorkflowHistory
    steps: tuple[StepDetail, ...]
    graph: svg.Graph
    trace_id: str | None
    trace_url: str | None
    plan_attempts: int  # plans the LLM planner asked for (0: a playbook planned it)

    @property
    def workflow(self) -> WorkflowState:
        """The workflow as it is now."""
        return self.history.state

    @property
    def trigger(self) -> Mapping[str, Any] | None:
        """The record of the event that started it (None: a goal submitted directly)."""
        found = self.workflow.input.get(TRIGGER_KEY)
        return found if isinstance(found, Mapping) else None

    @property
    def duration(self) -> timedelta | None:
        """How long it ran, once it finished."""
        state = self.workflow
        if state.started_at is None or state.finished_at is None:
            return None
        return state.finished_at - state.started_at

    @property
    def usage(self) -> Mapping[str, float]:
        """Tokens and cost over every step that reported them."""
        totals: dict[str, float] = {}
        for step in self.steps:
            for key, value in (step.task.usage or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
        return totals


def load(conn: Connection, state: AppState, workflow_id: str) -> WorkflowDetail | None:
    """The page's data, or None if there is no such workflow."""
    history = workflow_history.load(
        conn, workflow_id=workflow_id, namespace=state.settings.namespace
    )
    if history is None:
        return None
    workflow = history.state
    order = _order(conn, state, workflow)
    steps = tuple(StepDetail(workflow.tasks[name], deps) for name, deps in order)
    return WorkflowDetail(
        history=history,
        steps=steps,
        graph=svg.layout(order, {s.task.step: s.task.status.value for s in steps}),
        trace_id=trace_id_of(workflow.traceparent),
        trace_url=trace_url(state.settings.trace_url_template, workflow.traceparent),
        plan_attempts=len(plan_store.attempts_of(conn, workflow_id=workflow.id)),
    )


def _order(
    conn: Connection, state: AppState, workflow: WorkflowState
) -> Sequence[tuple[str, tuple[str, ...]]]:
    """(step, depends_on) of every task: the playbook's order and edges; tasks its
    version no longer has (or all, when the version is gone) after them, without edges."""
    playbook = state.reviews.versions.for_state(conn, workflow)
    known = [(s.name, tuple(s.depends_on)) for s in playbook.steps] if playbook else []
    order = [(name, deps) for name, deps in known if name in workflow.tasks]
    listed = {name for name, _ in order}
    return order + [(name, ()) for name in workflow.tasks if name not in listed]
