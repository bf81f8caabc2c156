"""A cancelled workflow in the console: its status renders as the others do, and its
escalation leaves the inbox."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.records import Outgoing
from orchestrator.review import CancelRequest, Reviews
from orchestrator.store import escalations as escalation_rows
from tests.review_ui.console.conftest import Escalations, assert_safe_page, section
from waypost.events import default_codec, utcnow
from waypost.topics import Topics

pytestmark = pytest.mark.integration


def test_the_escalation_page_of_a_cancelled_workflow_shows_it_cancelled(
    reviewer: TestClient,
    escalations: Escalations,
    engine: Engine,
    playbooks: PlaybookRegistry,
    namespace: str,
) -> None:
    escalation_id = escalations.open("Refund for order 7")
    reviews = Reviews(PlaybookVersions(playbooks), Outgoing(Topics(namespace), default_codec()))
    with engine.begin() as conn:
        workflow_id = escalation_rows.workflow_of(conn, escalation_id=escalation_id)
        assert workflow_id is not None
        reviews.cancel(
            conn,
            workflow_id=workflow_id,
            request=CancelRequest("ops", "duplicate"),
            now=utcnow(),
        )

    html = assert_safe_page(reviewer.get(f"/escalations/{escalation_id}"))
    inbox = assert_safe_page(reviewer.get("/inbox"))

    heading = section(html, '<h2 id="workflow-h">')
    assert '<span class="status status-cancelled">cancelled</span>' in heading
    assert 'class="dag-node status-cancelled' in section(html, '<svg class="dag"')
    assert '<span class="status status-resolved">resolved</span>' in html
    assert escalation_id not in inbox  # it left the reviewers' queue
