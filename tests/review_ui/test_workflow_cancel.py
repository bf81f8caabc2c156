"""POST /api/v1/workflows/{id}/cancel over HTTP (FastAPI's TestClient) on the real
PostgreSQL: who may cancel, the answer, the refusals as problem documents, and the audit
row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.store import outbox
from orchestrator.store.tables import audit_events
from orchestrator.workflow.state import EscalationStatus, WorkflowStatus
from tests.orchestrator.test_reviews import LATER, ReviewHarness
from tests.review_ui.test_escalations_api import Api, assert_problem

pytestmark = pytest.mark.integration

REASON = {"reason": "duplicate of another ticket"}


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def url(workflow_id: str) -> str:
    return f"/api/v1/workflows/{workflow_id}/cancel"


def test_an_admin_cancels_a_workflow_and_gets_its_new_state(api: Api) -> None:
    escalation = api.harness.escalate("g-api")

    response = api.post(url("g-api"), REASON, who="admin")

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["id"] == "g-api"
    assert body["status"] == "cancelled"
    assert body["reason"] == "cancelled by admin: duplicate of another ticket"
    assert [t["status"] for t in body["tasks"]] == ["cancelled"]
    assert api.get("/api/v1/workflows/g-api").json() == body
    assert api.harness.escalation(escalation.id).status is EscalationStatus.RESOLVED
    with api.harness.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.actor, audit_events.c.action, audit_events.c.detail).where(
                audit_events.c.workflow_id == "g-api", audit_events.c.action == "cancel"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("admin", "cancel", {"reason": REASON["reason"], "was": "running"})
    ]
    # The app here has no broker publisher: the event waits in the outbox for the relay.
    with api.harness.engine.connect() as conn:
        queued = outbox.claim(conn, limit=100, created_before=LATER)
    events = [
        api.harness.codec.decode(r.value, r.headers)
        for _, r in queued
        if r.topic == api.harness.topics.workflow_events
    ]
    assert [(e.type, e.subject) for e in events] == [("workflow.cancelled", "g-api")]


@pytest.mark.parametrize("who", ["reviewer", "analyst"])
def test_only_those_who_may_submit_goals_may_cancel(api: Api, who: str) -> None:
    api.harness.escalate("g-forbidden")

    assert_problem(api.post(url("g-forbidden"), REASON, who=who), 403)

    assert api.harness.state("g-forbidden").status is WorkflowStatus.RUNNING


def test_an_unknown_workflow_is_404(api: Api) -> None:
    body = assert_problem(api.post(url("nobody"), REASON, who="admin"), 404)

    assert "no workflow with id 'nobody'" in body["detail"]


def test_a_finished_workflow_is_409_naming_its_status_and_twice_is_cancelled(api: Api) -> None:
    escalation = api.harness.escalate("g-done")
    assert api.decide(escalation, "approve").status_code == 202
    api.harness.deliver_decisions()
    api.harness.escalate("g-twice")
    assert api.post(url("g-twice"), REASON, who="admin").status_code == 202

    done = assert_problem(api.post(url("g-done"), REASON, who="admin"), 409)
    twice = assert_problem(api.post(url("g-twice"), REASON, who="admin"), 409)

    assert done["detail"].startswith("workflow g-done is already completed;")
    assert twice["detail"].startswith("workflow g-twice is already cancelled;")
    assert api.harness.state("g-done").status is WorkflowStatus.COMPLETED


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "a\x00b"}, {"why": "x"}]
)
def test_a_reason_is_required_and_bounded(api: Api, body: dict[str, Any]) -> None:
    api.harness.escalate("g-reason")

    assert_problem(api.post(url("g-reason"), body, who="admin"), 422)

    assert api.harness.state("g-reason").status is WorkflowStatus.RUNNING
