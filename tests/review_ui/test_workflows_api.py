"""The workflow search and history API over HTTP (FastAPI's TestClient) on the real
PostgreSQL: the list's filters, sorts, cursors and counts, a workflow's escalations,
dead letters and timeline, who may read them, and refusals as problem documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from orchestrator.store import dead_letters as dead_letter_index
from orchestrator.store.tables import workflows
from tests.orchestrator.test_reviews import T0
from tests.review_ui.test_escalations_api import Api, assert_problem
from waypost.events import utcnow

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE = "/api/v1/workflows"
TRIGGER = {
    "event_id": "ev-1",
    "event_type": "shop.order.created",
    "source": "shop/orders",
    "topic": "shop.events",
    "depth": 1,
}


@pytest.fixture
def api(review_app: FastAPI, review_harness: Any) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def add(engine: Engine, workflow_id: str, status: str, minutes: int, **fields: Any) -> None:
    """A workflow row as the orchestrator leaves it (accepted ``minutes`` after T0)."""
    accepted = T0 + timedelta(minutes=minutes)
    finished = accepted + timedelta(seconds=90) if status in ("completed", "failed") else None
    row = {
        "id": workflow_id,
        "type": "test.search",
        "status": status,
        "input": {"subject": f"Refund {workflow_id}"},
        "accepted_at": accepted,
        "started_at": accepted + timedelta(seconds=1),
        "finished_at": finished,
        "updated_at": accepted,
        **fields,
    }
    with engine.begin() as conn:
        conn.execute(insert(workflows), [row])


def listed(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get(BASE, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


@pytest.fixture
def some(api: Api) -> Api:
    add(api.harness.engine, "s1", "completed", 1)
    add(api.harness.engine, "s2", "failed", 2, reason="step draft failed: TimeoutError")
    add(
        api.harness.engine,
        "s3",
        "running",
        3,
        input={"subject": "Parcel late", "_trigger": TRIGGER},
    )
    add(api.harness.engine, "t4", "completed", 4, type="test.other")
    return api


def test_every_filter_of_the_list(some: Api) -> None:
    assert ids(listed(some)) == ["t4", "s3", "s2", "s1"]
    assert ids(listed(some, status=["failed", "running"])) == ["s3", "s2"]
    assert ids(listed(some, status="completed", type="test.search")) == ["s1"]
    assert ids(listed(some, id_prefix="s")) == ["s3", "s2", "s1"]
    assert ids(listed(some, goal_id="s2")) == ["s2"]
    assert ids(listed(some, triggered_by="shop/orders")) == ["s3"]
    assert ids(listed(some, triggered_by="shop.order.created")) == ["s3"]
    assert ids(listed(some, text="refund")) == ["t4", "s2", "s1"]
    since = (T0 + timedelta(minutes=2)).isoformat()
    until = (T0 + timedelta(minutes=4)).isoformat()
    assert ids(listed(some, accepted_since=since, accepted_until=until)) == ["s3", "s2"]
    # A duration reaches back from now; these workflows finish in 2030.
    assert ids(listed(some, finished_since="1h")) == ["t4", "s2", "s1"]
    assert ids(listed(some, finished_until="1h")) == []
    assert ids(listed(some, started_until="2030-01-01T12:02:30")) == ["s2", "s1"]  # UTC


def test_rows_carry_start_duration_trigger_and_reason(some: Api) -> None:
    items = {item["id"]: item for item in listed(some)["items"]}

    assert items["s2"]["duration_s"] == 89.0
    assert items["s2"]["reason"] == "step draft failed: TimeoutError"
    assert items["s3"]["duration_s"] is None
    assert items["s3"]["triggered_by"] == {
        "event_type": "shop.order.created",
        "source": "shop/orders",
        "workflow_id": None,
    }
    assert items["s1"]["triggered_by"] is None
    assert items["s1"]["started_at"].startswith("2030-01-01T12:01:01")


def test_sort_order_and_cursors_both_ways(some: Api) -> None:
    first = listed(some, sort="finished", order="asc", limit=2)
    assert ids(first) == ["s1", "s2"]
    assert first["previous_cursor"] is None
    second = listed(some, sort="finished", order="asc", limit=2, cursor=first["next_cursor"])
    assert ids(second) == ["t4", "s3"]  # s3 has not finished: last
    assert second["next_cursor"] is None
    back = listed(some, sort="finished", order="asc", limit=2, cursor=second["previous_cursor"])
    assert ids(back) == ["s1", "s2"]


def test_counts_per_status_when_asked(some: Api) -> None:
    assert listed(some)["counts"] is None

    counts = listed(some, counts="true", status="failed", type="test.search")["counts"]

    assert {c["status"]: c["count"] for c in counts if c["count"]} == {
        "completed": 1,
        "failed": 1,
        "running": 1,
    }
    assert not any(c["capped"] for c in counts)


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"accepted_since": "yesterday"}, 422, "neither a duration"),
        ({"finished_until": "5 parsecs"}, 422, "finished_until"),
        ({"sort": "type"}, 422, "sort"),
        ({"order": "up"}, 422, "order"),
        ({"status": "lost"}, 422, "status"),
        ({"text": "a\x00b"}, 422, "text"),
        ({"limit": 0}, 422, "limit"),
        ({"cursor": "not-a-cursor"}, 400, "next_cursor or previous_cursor"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(
    api: Api, params: dict[str, Any], status: int, says: str
) -> None:
    body = assert_problem(api.get(BASE, **params), status)

    assert says in body["detail"] or says in str(body.get("errors")), body


def test_the_list_needs_credentials(api: Api) -> None:
    assert_problem(api.client.get(BASE), 401)


def test_a_workflow_s_escalations_with_their_decisions(api: Api) -> None:
    escalation = api.harness.escalate("g-esc")
    assert api.decide(escalation, "approve").status_code == 202

    response = api.get(f"{BASE}/g-esc/escalations")

    assert response.status_code == 200, response.text
    (found,) = response.json()
    assert (found["id"], found["step"], found["kind"]) == (escalation.id, "draft", "approval")
    assert found["status"] == "decided"
    assert found["decision"]["action"] == "approve"
    assert found["decision"]["reviewer"] == "reviewer"


def test_a_workflow_s_timeline_merges_state_and_audit(api: Api) -> None:
    # The harness's clock, then the app's (the decision), then the harness's again.
    api.harness.now = utcnow() - timedelta(minutes=5)
    escalation = api.harness.escalate("g-time")
    assert api.decide(escalation, "reject", reason="wrong tone").status_code == 202
    api.harness.now = utcnow() + timedelta(seconds=1)
    api.harness.deliver_decisions()

    response = api.get(f"{BASE}/g-time/timeline")

    assert response.status_code == 200, response.text
    events = response.json()
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["accepted", "started"]
    assert {"dispatched", "result", "escalation", "decision", "finished"} <= set(kinds)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    decision = next(e for e in events if e["kind"] == "decision")
    assert decision["actor"] == "reviewer"
    assert decision["escalation_id"] == escalation.id
    assert decision["title"] == "draft: reviewer decided reject"
    assert events[-1]["title"] == "Workflow failed"


def test_a_workflow_s_dead_letters_are_for_those_who_may_read_them(api: Api) -> None:
    api.harness.escalate("g-dead")
    with api.harness.engine.begin() as conn:
        dead_letter_index.index(conn, rows=[dead_letter_row("g-dead")])

    analyst = api.get(f"{BASE}/g-dead/dead-letters", who="analyst")
    reviewer = api.get(f"{BASE}/g-dead/dead-letters", who="reviewer")
    timeline = api.get(f"{BASE}/g-dead/timeline").json()

    assert analyst.status_code == 200, analyst.text
    (letter,) = analyst.json()
    assert (letter["workflow_id"], letter["error_class"]) == ("g-dead", "TimeoutError")
    assert_problem(reviewer, 403)
    assert any(e["kind"] == "dead_letter" and e["dead_letter_id"] == letter["id"] for e in timeline)


@pytest.mark.parametrize("path", ["escalations", "dead-letters", "timeline"])
def test_an_unknown_workflow_is_404_and_credentials_are_needed(api: Api, path: str) -> None:
    body = assert_problem(api.get(f"{BASE}/nobody/{path}", who="admin"), 404)

    assert "no workflow with id 'nobody'" in body["detail"]
    assert_problem(api.client.get(f"{BASE}/nobody/{path}"), 401)


def dead_letter_row(workflow_id: str) -> dict[str, Any]:
    """A dead letter of the workflow's task, as the indexer stores one."""
    return {
        "fingerprint": f"fp-{workflow_id}",
        "topic": "tasks.echo.dlq",
        "partition": 0,
        "offset": 1,
        "source_topic": "tasks.echo",
        "reason": "exhausted",
        "error_class": "TimeoutError",
        "error_message": "no result within 30s",
        "dead_lettered_at": T0 + timedelta(minutes=5),
        "workflow_id": workflow_id,
        "task_id": f"{workflow_id}:draft",
        "headers": [],
    }
