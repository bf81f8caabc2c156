"""POST /api/v1/breakers/{capability}/open and .../close over HTTP (FastAPI's TestClient)
on the real PostgreSQL: who may, what the circuit is after, the audit rows, the tasks a
close wakes, and refusals as problem documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.store import breakers as breaker_rows
from orchestrator.store.tables import audit_events
from orchestrator.workflow.state import TaskStatus
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_escalations_api import Api, assert_problem
from waypost.events import Event, GoalSubmitted, utcnow

pytestmark = pytest.mark.integration


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def audited(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    with api.harness.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.actor, audit_events.c.action, audit_events.c.detail)
            .where(audit_events.c.action.like("circuit_%"))
            .order_by(audit_events.c.id)
        ).all()
    return [(r.actor, r.action, r.detail) for r in rows]


def test_an_admin_opens_a_circuit_for_a_while_and_everyone_sees_it(api: Api) -> None:
    before = utcnow()
    response = api.post(
        "/api/v1/breakers/echo/open", {"reason": "vendor outage", "for_s": 600}, who="admin"
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["capability"], body["state"], body["opened_by"], body["open_reason"]) == (
        "echo",
        "open",
        "admin",
        "vendor outage",
    )
    listed = {b["capability"]: b for b in api.get("/api/v1/breakers").json()["items"]}
    assert listed["echo"] == body
    assert listed["triage"]["state"] == "closed"
    ((actor, action, detail),) = audited(api)
    assert (actor, action, detail["capability"], detail["reason"], detail["was"]) == (
        "admin",
        "circuit_opened_by_hand",
        "echo",
        "vendor outage",
        "closed",
    )
    with api.harness.engine.connect() as conn:
        circuit = breaker_rows.read(conn, capabilities=["echo"])["echo"]
    assert circuit.open_until is not None
    assert (
        before + timedelta(seconds=600) <= circuit.open_until <= utcnow() + timedelta(seconds=600)
    )
    assert detail["until"] == circuit.open_until.isoformat()


def test_an_admin_opens_a_circuit_until_closed_then_closes_it_waking_its_tasks(
    api: Api,
) -> None:
    opened = api.post("/api/v1/breakers/echo/open", {"reason": "maintenance"}, who="admin")
    assert opened.json()["open_until"] is None
    # A goal whose step goes to echo: its task waits for the circuit.
    harness = api.harness
    harness.deliver(
        Event(GoalSubmitted(type="test.reviewed", input={"text": "hi"}), source="t", id="g-w"),
        harness.topics.goals,
    )
    waiting = harness.state("g-w").tasks["draft"]
    assert (waiting.status, waiting.attempt) == (TaskStatus.RETRY_WAIT, 0)
    assert waiting.error is not None
    assert "opened by hand by admin (maintenance)" in waiting.error.message

    closed = api.post("/api/v1/breakers/echo/close", {"reason": "done"}, who="admin")

    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["opened_by"]) == ("closed", None)
    harness.reconciler.tick()
    sent = harness.state("g-w").tasks["draft"]
    assert (sent.status, sent.attempt) == (TaskStatus.DISPATCHED, 1)
    assert [(action, detail.get("woken_tasks")) for _, action, detail in audited(api)] == [
        ("circuit_opened_by_hand", None),
        ("circuit_closed_by_hand", 1),
    ]


@pytest.mark.parametrize("who", ["reviewer", "analyst"])
@pytest.mark.parametrize("what", ["open", "close"])
def test_only_admins_may_open_or_close_a_circuit(api: Api, who: str, what: str) -> None:
    assert_problem(api.post(f"/api/v1/breakers/echo/{what}", {"reason": "x"}, who=who), 403)

    assert audited(api) == []


def test_refusals_say_why(api: Api) -> None:
    closed = api.post("/api/v1/breakers/echo/close", {"reason": "x"}, who="admin")
    assert "closed already" in assert_problem(closed, 409)["detail"]
    unknown = api.post("/api/v1/breakers/nope/open", {"reason": "x"}, who="admin")
    assert "nope" in assert_problem(unknown, 404)["detail"]
    assert_problem(api.post("/api/v1/breakers/echo/open", {}, who="admin"), 422)
    assert_problem(api.post("/api/v1/breakers/echo/open", {"reason": ""}, who="admin"), 422)
    too_long = {"reason": "x", "for_s": 31 * 24 * 3600}
    assert_problem(api.post("/api/v1/breakers/echo/open", too_long, who="admin"), 422)
    negative = {"reason": "x", "for_s": -1}
    assert_problem(api.post("/api/v1/breakers/echo/open", negative, who="admin"), 422)
    unpaired = b'{"reason": "\\ud800"}'  # JSON text naming half a surrogate pair
    headers = {**api.auth("admin"), "Content-Type": "application/json"}
    response = api.client.post("/api/v1/breakers/echo/open", content=unpaired, headers=headers)
    assert "reason" in assert_problem(response, 422)["detail"]
    assert_problem(api.client.post("/api/v1/breakers/echo/open", json={"reason": "x"}), 401)
    assert audited(api) == []
