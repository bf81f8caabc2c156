"""Reviews end to end: real orchestrator, agent and HTTP processes on the real broker and
PostgreSQL. A result waits for a reviewer; a decision over HTTP resumes the workflow; a
missed deadline reassigns the escalation."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.e2e.reviewing import decide, escalation_of, finished, serving
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

REVIEW_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"


@pytest.fixture
def api(platform: Platform) -> Iterator[httpx.Client]:
    """Orchestrator, echo agent and `waypost serve` running; a client with an admin token."""
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = f"{PLAYBOOKS},{REVIEW_PLAYBOOKS}"
    with serving(platform, ("tests.support.agents",)) as client:
        yield client


def test_an_approval_over_http_resumes_the_workflow_and_a_rejection_fails_one(
    platform: Platform, api: httpx.Client
) -> None:
    approved_id = platform.submit("test.review", {"text": "approve me"})
    rejected_id = platform.submit("test.review", {"text": "reject me"})

    to_approve = escalation_of(api, approved_id)
    to_reject = escalation_of(api, rejected_id)

    for escalation, text in ((to_approve, "approve me"), (to_reject, "reject me")):
        assert (escalation["status"], escalation["kind"], escalation["step"]) == (
            "pending",
            "approval",
            "reviewed",
        )
        assert escalation["content"]["output"] == {"text": text, "attempt": 1}
    waiting = platform.workflow(approved_id)
    assert waiting is not None
    assert waiting.status is WorkflowStatus.RUNNING
    assert waiting.tasks["reviewed"].status is TaskStatus.AWAITING_REVIEW

    decision_id = decide(api, to_approve, "approve")
    decide(api, to_reject, "reject", reason="Not good enough.")

    approved = finished(platform, approved_id)
    assert approved.status is WorkflowStatus.COMPLETED
    assert approved.output == {"reviewed": {"text": "approve me", "attempt": 1}, "timed": None}
    shown = api.get(f"/api/v1/escalations/{to_approve['id']}").json()
    assert shown["status"] == "resolved"
    assert shown["decision"]["id"] == decision_id
    rejected = finished(platform, rejected_id)
    assert rejected.status is WorkflowStatus.FAILED
    assert rejected.reason == "reviewer test-admin rejected step 'reviewed': Not good enough."
    assert rejected.failed_step == "reviewed"
    again = api.post(
        f"/api/v1/escalations/{to_approve['id']}/decision",
        json={"action": "approve", "version": 2, "digest": to_approve["digest"]},
    )
    assert again.status_code == 409


def test_a_missed_deadline_reassigns_the_escalation_to_the_timeout_group(
    platform: Platform, api: httpx.Client
) -> None:
    workflow_id = platform.submit("test.review", {"text": "nobody looks", "mode": "sla"})
    escalation = escalation_of(api, workflow_id)
    assert escalation["step"] == "timed"

    def reassigned() -> dict[str, Any] | None:
        shown: dict[str, Any] = api.get(f"/api/v1/escalations/{escalation['id']}").json()
        return shown if shown["group"] == "leads" and shown["version"] >= 2 else None

    moved = wait_for(reassigned, timeout=30, interval=0.2, what="the escalation to be reassigned")

    assert moved["status"] == "pending"
    assert moved["digest"] == escalation["digest"]
    assert moved["assignee"] is None
    listed = api.get("/api/v1/escalations", params={"group": "leads"}).json()
    assert escalation["id"] in [item["id"] for item in listed["items"]]
    # The reviewer's view from before the reassignment is stale now.
    stale = api.post(
        f"/api/v1/escalations/{escalation['id']}/decision",
        json={"action": "approve", "version": 1, "digest": escalation["digest"]},
    )
    assert stale.status_code == 409
    state = platform.workflow(workflow_id)
    assert state is not None
    assert state.status is WorkflowStatus.RUNNING
    assert state.tasks["reviewed"].status is TaskStatus.SKIPPED


def test_fifty_concurrent_decisions_over_http_accept_one_and_resume_once(
    platform: Platform, api: httpx.Client
) -> None:
    workflow_id = platform.submit("test.review", {"text": "race"})
    escalation = escalation_of(api, workflow_id)
    start = threading.Barrier(50)

    def reviewer(index: int) -> int:
        body: dict[str, Any] = {
            "action": "edit" if index % 2 else "approve",
            "version": escalation["version"],
            "digest": escalation["digest"],
        }
        if index % 2:
            body["output"] = {"text": f"edit {index}"}
        start.wait(timeout=30)
        response = api.post(f"/api/v1/escalations/{escalation['id']}/decision", json=body)
        return response.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = Counter(pool.map(reviewer, range(50)))

    assert codes == Counter({202: 1, 409: 49})
    state = finished(platform, workflow_id)
    assert state.status is WorkflowStatus.COMPLETED
    shown = api.get(f"/api/v1/escalations/{escalation['id']}").json()
    decision = shown["decision"]
    expected = (
        decision["output"] if decision["action"] == "edit" else {"text": "race", "attempt": 1}
    )
    assert state.tasks["reviewed"].output == expected
    # Exactly one resume: one workflow.completed for this workflow on the events topic.
    records = platform.read_topic(platform.topics.workflow_events, expect=3)
    kinds = [
        dict(r.headers)["ce_type"].decode()
        for r in records
        if dict(r.headers)["ce_subject"].decode() == workflow_id
    ]
    assert sorted(kinds) == ["waypost.workflow.completed", "waypost.workflow.started"]
