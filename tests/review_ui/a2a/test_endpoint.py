"""The A2A routes over HTTP (FastAPI's TestClient) on the real PostgreSQL, called as
JSON-RPC documents (what curl would send): the public card, who may call what, goals
made idempotently from messages, refusals that make no workflow, and tasks read and
cancelled from the workflows. The a2a-sdk client against the running platform is in
tests/e2e/test_a2a_server.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from orchestrator.store import workflows as workflow_rows
from orchestrator.store.tables import audit_events
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_escalations_api import Api

pytestmark = pytest.mark.integration

ACCOUNT = {"account_id": "acct-1"}


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def rpc(api: Api, method: str, params: dict[str, Any], who: str | None = "admin") -> Response:
    headers = api.auth(who) if who is not None else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return api.client.post("/a2a", json=body, headers=headers)


def send(
    api: Api,
    message_id: str,
    data: Any = ACCOUNT,
    skill: str | None = "billing.anomaly",
    who: str = "admin",
) -> Response:
    """message/send (the 0.3 name) answering at once, as `blocking: false` asks."""
    parts = [{"kind": "data", "data": data}] if data is not None else []
    message = {
        "kind": "message",
        "messageId": message_id,
        "role": "user",
        "parts": [{"kind": "text", "text": "check this account"}, *parts],
        "metadata": {"skill": skill} if skill is not None else {},
    }
    return rpc(api, "message/send", {"message": message, "configuration": {"blocking": False}}, who)


def workflows(api: Api) -> list[str]:
    with api.harness.engine.connect() as conn:
        return [w.id for w in workflow_rows.list_page(conn, limit=200).items]


def test_the_card_is_public_and_its_skills_are_the_goal_types(api: Api) -> None:
    response = api.client.get("/.well-known/agent-card.json")

    assert response.status_code == 200, response.text
    card = response.json()
    assert [s["id"] for s in card["skills"]] == api.harness.playbooks.types()
    anomaly = next(s for s in card["skills"] if s["id"] == "billing.anomaly")
    assert anomaly["description"] == api.harness.playbooks.require("billing.anomaly").description
    (extension,) = card["capabilities"]["extensions"]
    schema = extension["params"]["billing.anomaly"]
    assert schema["required"] == ["account_id"]
    assert extension["params"]["test.reviewed"] == {}
    assert card["capabilities"]["streaming"] is True
    assert [(i["url"], i["protocolVersion"]) for i in card["supportedInterfaces"]] == [
        ("http://testserver/a2a", "1.0"),
        ("http://testserver/a2a", "0.3"),
    ]
    assert card["url"] == "http://testserver/a2a"  # the 0.3 form, for older clients
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}]


def test_the_endpoint_needs_a_token_and_the_admin_role_to_submit_or_cancel(api: Api) -> None:
    api.harness.escalate("g-read")

    anonymous = rpc(api, "tasks/get", {"id": "g-read"}, who=None)
    bad = api.client.post("/a2a", json={}, headers={"Authorization": "Bearer nope"})
    refused = send(api, "m-reviewer", who="reviewer")
    cancel = rpc(api, "tasks/cancel", {"id": "g-read"}, who="reviewer")
    read = rpc(api, "tasks/get", {"id": "g-read"}, who="reviewer")

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert bad.status_code == 401
    assert (refused.status_code, cancel.status_code) == (403, 403)
    assert "may not call message/send" in refused.json()["detail"]
    assert read.status_code == 200
    assert read.json()["result"]["status"]["state"] == "input-required"
    assert workflows(api) == ["g-read"]


def test_a_message_becomes_one_workflow_however_often_it_is_sent(api: Api) -> None:
    first = send(api, "m-1")
    again = send(api, "m-1")
    other_input = send(api, "m-1", data={"account_id": "acct-2"})

    task = first.json()["result"]
    assert (task["kind"], task["id"], task["contextId"]) == ("task", "a2a:m-1", "a2a:m-1")
    assert task["status"]["state"] == "submitted"
    assert again.json()["result"]["id"] == "a2a:m-1"
    error = other_input.json()["error"]
    assert error["code"] == -32602
    assert "message id 'm-1' was already sent with another skill or input" in error["message"]
    assert workflows(api) == ["a2a:m-1"]
    with api.harness.engine.connect() as conn:
        stored = workflow_rows.get(conn, workflow_id="a2a:m-1")
    assert stored is not None
    assert (stored.type, dict(stored.input)) == ("billing.anomaly", ACCOUNT)


@pytest.mark.parametrize(
    ("data", "skill", "says"),
    [
        (None, "billing.anomaly", "needs exactly one data part"),
        (ACCOUNT, None, "name the skill (the goal type) in the message metadata as 'skill'"),
        (ACCOUNT, "billing.nope", "unknown skill 'billing.nope'"),
        ({"threshold": 2}, "billing.anomaly", '"account_id" is a required property'),
    ],
)
def test_a_message_that_cannot_be_a_goal_is_a_json_rpc_error_and_no_workflow(
    api: Api, data: Any, skill: str | None, says: str
) -> None:
    response = send(api, "m-bad", data=data, skill=skill)

    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == -32602
    assert says in error["message"]
    assert workflows(api) == []


def test_a_task_waiting_for_a_reviewer_is_input_required_until_cancelled(api: Api) -> None:
    escalation = api.harness.escalate("g-wait")

    waiting = rpc(api, "tasks/get", {"id": "g-wait"}).json()["result"]
    cancelled = rpc(
        api, "tasks/cancel", {"id": "g-wait", "metadata": {"reason": "not needed"}}
    ).json()["result"]
    again = rpc(api, "tasks/cancel", {"id": "g-wait"}).json()
    unknown = rpc(api, "tasks/get", {"id": "nobody"}).json()

    assert waiting["status"]["state"] == "input-required"
    text = waiting["status"]["message"]["parts"][0]["text"]
    assert text == f"step 'draft' waits for a reviewer: {escalation.reason}"
    assert cancelled["status"]["state"] == "canceled"
    assert "not needed" in cancelled["status"]["message"]["parts"][0]["text"]
    assert again["error"]["code"] == -32002  # not cancelable: it has finished
    assert unknown["error"]["code"] == -32001
    with api.harness.engine.connect() as conn:
        actors = conn.execute(
            select(audit_events.c.actor, audit_events.c.detail).where(
                audit_events.c.workflow_id == "g-wait", audit_events.c.action == "cancel"
            )
        ).all()
    assert [tuple(a) for a in actors] == [("admin", {"reason": "not needed", "was": "running"})]
