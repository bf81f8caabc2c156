"""Four eyes over the JSON API on the real PostgreSQL: an escalation shows how many
approvals it needs and who gave them, a first approval answers ``pending``, the same
reviewer's second approval is a 409 problem saying a second reviewer must approve, and a
different reviewer's completes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.orchestrator.test_four_eyes import GOAL_TYPE, write_four_eyes_playbooks
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_escalations_api import BASE, Api, assert_problem

pytestmark = pytest.mark.integration


@pytest.fixture
def review_harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    """The review playbooks and one whose draft needs two reviewers."""
    return ReviewHarness(engine, namespace, write_four_eyes_playbooks(tmp_path / "playbooks"))


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def test_a_first_approval_is_pending_and_the_same_reviewer_cannot_give_the_second(
    api: Api,
) -> None:
    escalation = api.harness.escalate("g-api-4e", goal_type=GOAL_TYPE)
    path = f"{BASE}/{escalation.id}"
    fresh = api.get(path).json()
    assert (fresh["required_approvals"], fresh["approvals"]) == (2, [])

    first = api.decide(escalation, "approve")

    assert first.status_code == 202, first.text
    body = first.json()
    assert (body["status"], body["approvals"], body["required_approvals"]) == ("pending", 1, 2)
    assert body["version"] == 2
    shown = api.get(path).json()
    assert (shown["status"], shown["version"], shown["decision"]) == ("pending", 2, None)
    (approval,) = shown["approvals"]
    assert (approval["reviewer"], approval["action"], approval["id"]) == (
        "reviewer",
        "approve",
        body["decision_id"],
    )
    (row,) = [r for r in api.get(BASE).json()["items"] if r["id"] == escalation.id]
    assert (row["approvals"], row["required_approvals"]) == (1, 2)

    again = api.decide(api.harness.escalation(escalation.id), "approve")

    problem = assert_problem(again, 409)
    assert problem["detail"] == (
        "you approved it already; a second reviewer must approve it (1 of 2 approvals given)"
    )
    assert (problem["approvals"], problem["required_approvals"]) == (1, 2)

    second = api.decide(api.harness.escalation(escalation.id), "approve", "reviewer2")

    assert second.status_code == 202, second.text
    assert (second.json()["status"], second.json()["approvals"]) == ("decided", 2)
    decided = api.get(path).json()
    assert decided["status"] == "decided"
    assert decided["decision"]["reviewer"] == "reviewer2"
    assert [a["reviewer"] for a in decided["approvals"]] == ["reviewer", "reviewer2"]


def test_one_approval_still_decides_an_ordinary_escalation(api: Api) -> None:
    escalation = api.harness.escalate("g-api-1e")

    response = api.decide(escalation, "approve")

    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["required_approvals"]) == ("decided", 1)
