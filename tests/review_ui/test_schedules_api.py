"""/api/v1/schedules over HTTP on the real PostgreSQL: who may do what, the answers,
refusals as problem documents with messages, and the audit rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.schedules import manage
from orchestrator.schedules.files import load_text
from orchestrator.store.tables import audit_events
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_escalations_api import Api, assert_problem
from waypost.events import utcnow

pytestmark = pytest.mark.integration

BASE = "/api/v1/schedules"
TICKET = {
    "name": "morning-check",
    "cron": "0 7 * * 1-5",
    "timezone": "Europe/Berlin",
    "catch_up": {"bounded": 2},
    "goal": {
        "type": "support.ticket",
        "input": {"subject": "morning check ${slot}", "body": "fired at ${fire_time}"},
    },
}


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def audited(api: Api) -> list[tuple[str, str]]:
    with api.harness.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.actor, audit_events.c.action)
            .where(audit_events.c.action.like("schedule.%"))
            .order_by(audit_events.c.id)
        ).all()
    return [(row.actor, row.action) for row in rows]


def test_an_admin_adds_lists_pauses_resumes_and_removes_a_schedule(api: Api) -> None:
    created = api.post(BASE, TICKET, who="admin")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["source"], body["paused"]) == ("morning-check", "api", False)
    assert body["definition"]["catch_up"] == {"bounded": 2}
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    assert next_fire > utcnow()
    assert next_fire.minute == 0

    listed = api.get(BASE).json()["items"]
    assert [item["name"] for item in listed] == ["morning-check"]
    paused = api.post(f"{BASE}/morning-check/pause", who="admin").json()
    assert paused["paused"] is True
    assert paused["next_fire_at"] is None
    resumed = api.post(f"{BASE}/morning-check/resume", who="admin").json()
    assert resumed["paused"] is False
    assert resumed["next_fire_at"] == body["next_fire_at"]
    one = api.get(f"{BASE}/morning-check", who="analyst").json()
    assert one["recent_fires"] == []
    assert one["updated_by"] == "admin"

    removed = api.client.delete(f"{BASE}/morning-check", headers=api.auth("admin"))
    assert removed.status_code == 204
    assert_problem(api.get(f"{BASE}/morning-check"), 404)
    assert audited(api) == [
        ("admin", "schedule.created"),
        ("admin", "schedule.paused"),
        ("admin", "schedule.resumed"),
        ("admin", "schedule.removed"),
    ]


@pytest.mark.parametrize("who", ["reviewer", "analyst"])
def test_only_admins_change_schedules(api: Api, who: str) -> None:
    assert_problem(api.post(BASE, TICKET, who=who), 403)
    api.post(BASE, TICKET, who="admin")
    assert_problem(api.post(f"{BASE}/morning-check/pause", who=who), 403)
    gone = api.client.delete(f"{BASE}/morning-check", headers=api.auth(who))
    assert_problem(gone, 403)
    assert api.get(BASE, who=who).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"cron": "0 7 * *"}, 422, "has 4 field(s)"),
        ({"every": "30s"}, 422, "give exactly one of cron: (an expression) and every:"),
        ({"timezone": "Mars/Base"}, 422, "'Mars/Base' is not an IANA time zone"),
        ({"catch_up": "sometimes"}, 422, "catch_up"),
        ({"name": "Bad Name"}, 422, "name"),
        ({"goal": {"type": "no.such", "input": {}}}, 422, "no playbook for goal type"),
        ({"goal": {"type": "support.ticket", "input": {"subject": "x"}}}, 422, "body"),
        (
            {"goal": {"type": "support.ticket", "input": {"subject": "${/a}", "body": "b"}}},
            422,
            "${/a} is not a schedule variable",
        ),
        ({"description": "nul \u0000"}, 422, "cannot be stored"),
    ],
)
def test_a_bad_schedule_is_refused_with_the_reason(
    api: Api, change: dict[str, Any], status: int, message: str
) -> None:
    body = assert_problem(api.post(BASE, {**TICKET, **change}, who="admin"), status)
    assert message.lower() in (body["detail"] + str(body.get("errors", ""))).lower()
    assert api.get(BASE).json()["items"] == []


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    response = api.client.post(
        BASE,
        content=b"\xff\xfe not json",
        headers={**api.auth("admin"), "content-type": "application/json"},
    )
    assert_problem(response, 400)
    assert api.get(BASE).json()["items"] == []


def test_conflicts_are_409_and_say_what_to_do(api: Api) -> None:
    assert api.post(BASE, TICKET, who="admin").status_code == 201
    body = assert_problem(api.post(BASE, TICKET, who="admin"), 409)
    assert "'morning-check' exists already" in body["detail"]
    defined = load_text(
        "schedules:\n  from-file:\n    every: 1h\n    goal:\n      type: support.ticket\n"
        "      input: {subject: s, body: b}\n",
        source="playbooks/schedules/ops.yaml",
    )
    with api.harness.engine.begin() as conn:
        manage.sync(conn, defined=defined, now=utcnow())
    refused = api.client.delete(f"{BASE}/from-file", headers=api.auth("admin"))
    body = assert_problem(refused, 409)
    assert "defined in playbooks/schedules/ops.yaml; remove it from that file" in body["detail"]
    paused = api.post(f"{BASE}/from-file/pause", who="admin")
    assert paused.status_code == 200
    assert paused.json()["source"] == "file"


def test_unknown_schedules_are_404(api: Api) -> None:
    for response in (
        api.get(f"{BASE}/nope"),
        api.post(f"{BASE}/nope/pause", who="admin"),
        api.post(f"{BASE}/nope/resume", who="admin"),
        api.client.delete(f"{BASE}/nope", headers=api.auth("admin")),
    ):
        body = assert_problem(response, 404)
        assert "no schedule named 'nope'" in body["detail"]
