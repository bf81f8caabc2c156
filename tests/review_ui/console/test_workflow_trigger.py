"""The escalation page's workflow section says which event started a triggered workflow
(event cascades, orchestrator/cascades/), and nothing for one a client submitted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.review_ui.console.conftest import Escalations, assert_safe_page, section

pytestmark = pytest.mark.integration

TRIGGER = {
    "event_id": "ev-42",
    "event_type": "waypost.workflow.completed",
    "source": "waypost/orchestrator",
    "topic": "workflow.events",
    "workflow_id": "wf-<b>first</b>",
    "depth": 2,
}


def test_the_workflow_section_shows_the_event_that_started_it(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = escalations.open(goal_input={"subject": "Refund", "_trigger": TRIGGER})

    response = reviewer.get(f"/escalations/{escalation_id}")

    assert response.status_code == 200
    assert_safe_page(response)
    workflow = section(response.text, '<section class="workflow"')
    line = section(workflow, '<p class="trigger"')
    assert "Started by <code>waypost.workflow.completed</code> event <code>ev-42</code>" in line
    assert "from waypost/orchestrator" in line
    assert "(workflow <code>wf-&lt;b&gt;first&lt;/b&gt;</code>)" in line  # autoescaped
    assert "on workflow.events · cascade depth 2" in line


def test_a_workflow_no_trigger_started_has_no_trigger_line(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = escalations.open()

    response = reviewer.get(f"/escalations/{escalation_id}")

    assert response.status_code == 200
    assert 'class="trigger"' not in response.text
