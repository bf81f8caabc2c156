"""A workflow runs to the end on the playbook version that planned it (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.tables import playbook_versions
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.messages import TaskSucceeded
from orchestrator.workflow.state import WorkflowStatus
from waypost.events import default_codec
from waypost.topics import Topics

VERSION_1 = """
type: test.versioned
version: 1
steps:
  - {name: draft, capability: echo, input: {text: $goal.text}}
output: {draft: $steps.draft.output}
"""
VERSION_2 = """
type: test.versioned
version: 2
steps:
  - {name: write, capability: echo, input: {text: $goal.text}}
  - {name: check, capability: echo, depends_on: [write], input: {text: $steps.write.output.text}}
"""
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _applier(playbook_text: str, namespace: str) -> Applier:
    return Applier(
        playbooks=PlaybookRegistry([load_text(playbook_text, source="test.versioned.yaml")]),
        outgoing=Outgoing(Topics(namespace), default_codec()),
        random=lambda: 0.5,
    )


def _plan(engine: Engine, applier: Applier, goal_id: str) -> None:
    goal = NewWorkflow(goal_id, "test.versioned", {"text": "hi"}, NOW)
    with engine.begin() as conn:
        applier.plan_new(conn, goals=[goal], now=NOW)


def test_a_running_workflow_finishes_on_its_own_version_after_the_playbook_changed(
    engine: Engine, namespace: str
) -> None:
    old = _applier(VERSION_1, namespace)
    _plan(engine, old, "wf-old")

    new = _applier(VERSION_2, namespace)  # the orchestrator restarted with version 2
    result = TaskSucceeded(task_id("wf-old", "draft"), 1, {"text": "done"}, 0.9)
    with engine.begin() as conn:
        states = workflow_rows.lock(conn, ids=["wf-old"])
        applied = new.apply(conn, states=states, inputs=[("wf-old", result)], now=NOW)
    _plan(engine, new, "wf-new")

    assert applied.applied == 1
    with engine.connect() as conn:
        finished = workflow_rows.get(conn, workflow_id="wf-old")
        planned = workflow_rows.get(conn, workflow_id="wf-new")
        stored = conn.execute(select(func.count()).select_from(playbook_versions)).scalar_one()
    assert finished is not None
    assert finished.status is WorkflowStatus.COMPLETED
    assert finished.output == {"draft": {"text": "done"}}
    assert planned is not None
    assert list(planned.tasks) == ["write", "check"]
    assert finished.playbook_digest != planned.playbook_digest
    assert stored == 2
