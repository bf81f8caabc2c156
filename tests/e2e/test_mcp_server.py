"""Waypost's MCP server end to end: the official `mcp` SDK client, over real HTTP, drives
`waypost serve` with a running orchestrator and echo agent: an assistant submits a goal,
waits for its escalation, a reviewer's assistant decides it, and the workflow completes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orchestrator.store.tables import audit_events
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.e2e.reviewing import serving
from tests.review_ui.test_mcp_server import call, text_of
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

REVIEW_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"


@pytest.fixture
def url(platform: Platform) -> Iterator[str]:
    """Orchestrator, echo agent and `waypost serve` running; the HTTP app's URL."""
    platform.env_overrides["WAYPOST_PLAYBOOK_DIRS"] = f"{PLAYBOOKS},{REVIEW_PLAYBOOKS}"
    with serving(platform, ("tests.support.agents",)) as client:
        yield str(client.base_url).rstrip("/")


def token(platform: Platform, name: str, role: Role) -> str:
    with platform.engine.begin() as conn:
        secret, _ = auth_store.create_token(conn, name=name, role=role)
    return secret


def test_an_assistant_submits_a_goal_and_another_decides_its_escalation(
    platform: Platform, url: str
) -> None:
    admin = token(platform, "ops-assistant", Role.ADMIN)
    reviewer = token(platform, "review-assistant", Role.REVIEWER)

    submitted = call(url, admin, "submit_goal", type="test.review", input={"text": "via MCP"})
    assert not submitted.is_error, text_of(submitted)
    assert submitted.structured_content is not None
    workflow_id = submitted.structured_content["workflow_id"]

    def pending() -> dict[str, Any] | None:
        listed = call(url, reviewer, "list_escalations", goal_type="test.review")
        assert listed.structured_content is not None, text_of(listed)
        mine = [e for e in listed.structured_content["items"] if e["workflow_id"] == workflow_id]
        return mine[0] if mine else None

    escalation = wait_for(pending, timeout=90, interval=0.5, what="the goal's escalation")
    read = call(url, reviewer, "get_escalation", escalation_id=escalation["id"])
    assert read.structured_content is not None
    assert read.structured_content["content"]["output"]["text"] == "via MCP"
    bound = {
        "escalation_id": escalation["id"],
        "version": read.structured_content["version"],
        "digest": read.structured_content["digest"],
    }
    refused = call(url, reviewer, "submit_goal", type="test.review", input={"text": "no"})
    decided = call(url, reviewer, "decide_escalation", **bound, action="approve")
    stale = call(url, reviewer, "decide_escalation", **bound, action="approve")

    assert refused.is_error
    assert "needs the admin role" in text_of(refused)
    assert not decided.is_error, text_of(decided)
    assert stale.is_error
    assert "409" in text_of(stale)

    def completed() -> dict[str, Any] | None:
        found = call(url, admin, "get_workflow", workflow_id=workflow_id).structured_content
        return found if found is not None and found["status"] == "completed" else None

    workflow = wait_for(completed, timeout=90, interval=0.5, what="the workflow to complete")
    assert workflow["output"]["reviewed"]["text"] == "via MCP"
    with platform.engine.connect() as conn:
        rows = conn.execute(select(audit_events).order_by(audit_events.c.id)).all()
    decisions = [(r.actor, r.escalation_id) for r in rows if r.action == "decide"]
    assert decisions == [("review-assistant", escalation["id"])]
    calls = {
        (r.actor, r.detail["tool"], r.detail["outcome"]) for r in rows if r.action == "mcp_call"
    }
    assert {
        ("ops-assistant", "submit_goal", "ok"),
        ("review-assistant", "submit_goal", "403"),
        ("review-assistant", "decide_escalation", "ok"),
        ("review-assistant", "decide_escalation", "409"),
        ("ops-assistant", "get_workflow", "ok"),
    } <= calls


def test_the_http_app_answers_401_at_mcp_without_a_token(url: str) -> None:
    response = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
