"""The escalations API over HTTP (FastAPI's TestClient) on the real PostgreSQL: listing,
reading, claiming, assigning, deciding and commenting, with roles, tokens and sessions,
and every error as application/problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from orchestrator.workflow.state import EscalationState, EscalationStatus, WorkflowStatus
from review_ui.auth import store as auth_store
from review_ui.auth.principal import CSRF_HEADER, SESSION_COOKIE
from review_ui.auth.roles import Role
from tests.orchestrator.test_reviews import ReviewHarness
from waypost.events import utcnow

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
BASE = "/api/v1/escalations"


class Api:
    """The app, a harness that makes escalations, and a bearer token per role."""

    def __init__(self, client: TestClient, harness: ReviewHarness) -> None:
        self.client = client
        self.harness = harness
        self.tokens = {role: self.token(role) for role in ("admin", "reviewer", "analyst")}
        self.tokens["reviewer2"] = self.token("reviewer", name="reviewer2")

    def token(self, role: str, name: str | None = None) -> str:
        with self.harness.engine.begin() as conn:
            secret, _ = auth_store.create_token(conn, name=name or role, role=Role(role))
        return secret

    def get(self, path: str, who: str = "reviewer", **params: Any) -> Response:
        return self.client.get(path, params=params, headers=self.auth(who))

    def post(self, path: str, body: Any = None, who: str = "reviewer") -> Response:
        return self.client.post(path, json=body, headers=self.auth(who))

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def decide(
        self, escalation: EscalationState, action: str, who: str = "reviewer", **fields: Any
    ) -> Response:
        body = {"action": action, "version": escalation.version, "digest": escalation.digest}
        return self.post(f"{BASE}/{escalation.id}/decision", {**body, **fields}, who)


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


# --- authentication and roles ---------------------------------------------------------------


def test_without_credentials_it_is_401_saying_how_to_authenticate(api: Api) -> None:
    response = api.client.get(BASE)

    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert "waypost token create" in body["detail"]


def test_an_unknown_or_revoked_token_is_401(api: Api) -> None:
    secret = api.token("reviewer", name="soon revoked")
    assert api.client.get(BASE, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    with api.harness.engine.begin() as conn:
        (token,) = [t for t in auth_store.list_tokens(conn) if t.name == "soon revoked"]
        auth_store.disable_token(conn, token_id=token.id)

    for credentials in (secret, "wp_not-a-token"):
        response = api.client.get(BASE, headers={"Authorization": f"Bearer {credentials}"})
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert "unknown or revoked" in body["detail"]


def test_an_analyst_reads_but_may_not_decide_claim_or_comment(api: Api) -> None:
    escalation = api.harness.escalate("g-analyst")
    path = f"{BASE}/{escalation.id}"

    assert api.get(BASE, "analyst").status_code == 200
    assert api.get(path, "analyst").status_code == 200
    for response in (
        api.decide(escalation, "approve", "analyst"),
        api.post(f"{path}/claim", who="analyst"),
        api.post(f"{path}/comments", {"text": "hi", "version": 1}, "analyst"),
    ):
        body = assert_problem(response, 403)
        assert "analyst" in body["detail"]
    assert api.harness.escalation(escalation.id) == escalation


def test_only_admins_assign_and_only_to_enabled_users(api: Api) -> None:
    escalation = api.harness.escalate("g-assign")
    path = f"{BASE}/{escalation.id}/assign"
    with api.harness.engine.begin() as conn:
        auth_store.add_user(conn, name="bob", password="a long passphrase", role=Role.REVIEWER)
        auth_store.add_user(conn, name="dora", password="a long passphrase", role=Role.REVIEWER)
        auth_store.disable_user(conn, name="dora")

    assert_problem(api.post(path, {"assignee": "bob"}, "reviewer"), 403)
    nobody = assert_problem(api.post(path, {"assignee": "bobby"}, "admin"), 422)
    assert "'bobby' is not an enabled console user" in nobody["detail"]
    assert "bob" in nobody["detail"]
    assert "dora" not in nobody["detail"]
    assert_problem(api.post(path, {"assignee": "dora"}, "admin"), 422)
    assert api.harness.escalation(escalation.id).assignee is None  # nothing changed
    response = api.post(path, {"assignee": "bob"}, "admin")

    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == "bob"
    assert_problem(api.post(path, {"assignee": ""}, "admin"), 422)


def test_a_session_needs_its_own_origin_and_csrf_token_to_change_anything(api: Api) -> None:
    escalation = api.harness.escalate("g-session")
    with api.harness.engine.begin() as conn:
        user = auth_store.add_user(
            conn, name="sam", password="a long passphrase", role=Role.REVIEWER
        )
        cookie, session = auth_store.start_session(conn, user=user, now=utcnow())
    api.client.cookies.set(SESSION_COOKIE, cookie)
    path = f"{BASE}/{escalation.id}/claim"

    assert api.client.get(BASE).status_code == 200  # reading needs no CSRF token
    no_origin = api.client.post(path)
    foreign = api.client.post(path, headers={"Origin": "https://evil.example"})
    no_csrf = api.client.post(path, headers={"Origin": "http://testserver"})
    good = api.client.post(
        path, headers={"Origin": "http://testserver", CSRF_HEADER: session.csrf_token}
    )

    assert "Origin" in assert_problem(no_origin, 403)["detail"]
    assert "evil.example" in assert_problem(foreign, 403)["detail"]
    assert "CSRF" in assert_problem(no_csrf, 403)["detail"]
    assert good.status_code == 200, good.text
    assert good.json()["assignee"] == "sam"


# --- listing and reading --------------------------------------------------------------------


def test_the_list_shows_pending_escalations_with_their_sla(api: Api) -> None:
    first = api.harness.escalate("g-list-1", goal_input={"text": "First"})
    second = api.harness.escalate("g-list-2", goal_input={"text": "Second"})
    api.decide(second, "approve")

    pending = api.get(BASE).json()
    decided = api.get(BASE, status="decided").json()

    assert (pending["total"], pending["page"], pending["pages"]) == (1, 1, 1)
    (item,) = pending["items"]
    assert item["id"] == first.id
    assert item["workflow_id"] == "g-list-1"
    assert (item["goal_type"], item["step"], item["capability"]) == (
        "test.reviewed",
        "draft",
        "echo",
    )
    assert (item["kind"], item["status"], item["priority"], item["group"]) == (
        "approval",
        "pending",
        2,
        "editors",
    )
    assert (item["version"], item["digest"], item["assignee"]) == (1, first.digest, None)
    assert item["summary"] == "First"
    # Opened in 2030 on the harness clock: far in the future, so on time.
    assert item["sla"] == "ok"
    assert [i["id"] for i in decided["items"]] == [second.id]
    assert api.get(BASE, goal_type="other").json()["items"] == []
    assert api.get(BASE, assignee="").json()["total"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"priority": 9},
        {"status": "lost"},
        {"sort": "random"},
        {"page": 0},
        {"page_size": 1000},
        {"group": "bad\x00group"},
    ],
)
def test_invalid_list_parameters_are_422(api: Api, params: dict[str, Any]) -> None:
    body = assert_problem(api.get(BASE, **params), 422)

    assert body["title"] in ("Invalid request", "Invalid filter")


def test_one_escalation_shows_the_content_its_digest_covers(api: Api) -> None:
    escalation = api.harness.escalate("g-get", output={"text": "Shown"})

    body = api.get(f"{BASE}/{escalation.id}").json()

    assert body["id"] == escalation.id
    assert body["content"] == dict(escalation.content)
    assert body["content"]["output"] == {"text": "Shown"}
    assert (body["version"], body["digest"], body["status"]) == (1, escalation.digest, "pending")
    assert body["decision"] is None
    assert body["overdue"] is False


def test_an_unknown_escalation_is_404(api: Api) -> None:
    api.harness.escalate("g-404")

    for path in (f"{BASE}/nope", f"{BASE}/nope/claim", f"{BASE}/nope/unclaim"):
        response = api.get(path) if path.endswith("nope") else api.post(path)
        assert "nope" in assert_problem(response, 404)["detail"]
    body = {"action": "approve", "version": 1, "digest": "0" * 64}
    assert_problem(api.post(f"{BASE}/nope/decision", body), 404)


# --- claims ---------------------------------------------------------------------------------


def test_claim_and_unclaim(api: Api) -> None:
    escalation = api.harness.escalate("g-claim")
    path = f"{BASE}/{escalation.id}"

    claimed = api.post(f"{path}/claim")
    taken = api.post(f"{path}/claim", who="reviewer2")
    released_by_other = api.post(f"{path}/unclaim", who="reviewer2")
    released = api.post(f"{path}/unclaim")

    assert claimed.status_code == 200
    assert claimed.json()["assignee"] == "reviewer"
    body = assert_problem(taken, 409)
    assert body["assignee"] == "reviewer"
    assert "claimed by reviewer" in body["detail"]
    assert_problem(released_by_other, 409)
    assert released.json()["assignee"] is None


# --- decisions ------------------------------------------------------------------------------


def test_a_decision_is_accepted_once_and_resumes_the_workflow(api: Api) -> None:
    escalation = api.harness.escalate("g-decide", output={"text": "Proposal"})

    accepted = api.decide(escalation, "approve")
    again = api.decide(escalation, "reject", who="reviewer2", reason="late")

    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert (body["escalation_id"], body["version"]) == (escalation.id, 2)
    conflict = assert_problem(again, 409)
    assert conflict["title"] == "Conflict"
    assert "already decided: approve by reviewer" in conflict["detail"]
    assert conflict["escalation_status"] == "decided"

    api.harness.deliver_decisions()

    assert api.harness.state("g-decide").status is WorkflowStatus.COMPLETED
    shown = api.get(f"{BASE}/{escalation.id}").json()
    assert shown["status"] == "resolved"
    assert shown["decision"]["id"] == body["decision_id"]
    assert (shown["decision"]["action"], shown["decision"]["reviewer"]) == ("approve", "reviewer")


def test_a_decision_on_a_stale_version_is_409_with_the_current_version(api: Api) -> None:
    escalation = api.harness.escalate("g-stale")

    body = assert_problem(api.decide(escalation.evolve(version=3), "approve"), 409)

    assert body["version"] == 1
    assert "reload it" in body["detail"]


def test_invalid_decisions_are_422_with_their_errors(api: Api) -> None:
    escalation = api.harness.escalate("g-invalid")

    bad_edit = assert_problem(api.decide(escalation, "edit", output={"text": ""}), 422)
    no_reason = assert_problem(api.decide(escalation, "reject"), 422)
    bad_digest = assert_problem(api.decide(escalation.evolve(digest="xyz"), "approve"), 422)
    bad_action = assert_problem(api.decide(escalation, "promote"), 422)

    assert bad_edit["title"] == "Invalid decision"
    assert [e["field"] for e in bad_edit["errors"]] == ["text"]
    assert "a rejection needs a reason" in no_reason["detail"]
    assert [e["field"] for e in bad_digest["errors"]] == ["body.digest"]
    assert [e["field"] for e in bad_action["errors"]] == ["body.action"]
    assert api.harness.queued_decisions() == []


def test_an_admin_may_decide_an_escalation_claimed_by_someone_else(api: Api) -> None:
    escalation = api.harness.escalate("g-override")
    api.post(f"{BASE}/{escalation.id}/claim")

    refused = api.decide(escalation, "approve", who="reviewer2")
    overridden = api.decide(escalation, "approve", who="admin")

    assert_problem(refused, 409)
    assert overridden.status_code == 202, overridden.text


# --- comments -------------------------------------------------------------------------------


def test_comments_are_recorded_and_empty_ones_refused(api: Api) -> None:
    escalation = api.harness.escalate("g-comment")
    path = f"{BASE}/{escalation.id}/comments"

    recorded = api.post(path, {"text": "Needs a second look", "version": 1})
    blank = api.post(path, {"text": "   ", "version": 1})
    empty = api.post(path, {"text": "", "version": 1})

    assert recorded.status_code == 201
    assert recorded.json() == {"status": "recorded"}
    assert_problem(blank, 422)
    assert_problem(empty, 422)
    (comment,) = [e for e in api.harness.audit(escalation.id) if e.action == "comment"]
    assert (comment.actor, comment.detail) == ("reviewer", {"text": "Needs a second look"})


def test_a_comment_is_bound_to_the_version_read_and_a_stale_one_is_409(api: Api) -> None:
    escalation = api.harness.escalate("g-comment-stale")
    path = f"{BASE}/{escalation.id}/comments"
    assert api.decide(escalation, "approve").status_code == 202  # now at version 2

    stale = api.post(path, {"text": "Approve it?", "version": 1})
    current = api.post(path, {"text": "Approved after a call", "version": 2})

    body = assert_problem(stale, 409)
    assert body["title"] == "Conflict"
    assert body["version"] == 2
    assert body["detail"] == (
        "the escalation changed since you saw it (you saw version 1, it is at version 2); "
        "reload it and look again"
    )
    assert current.status_code == 201, current.text
    comments = [e for e in api.harness.audit(escalation.id) if e.action == "comment"]
    assert [(c.version, c.detail) for c in comments] == [(2, {"text": "Approved after a call"})]


def test_a_retry_with_no_attempt_left_is_422(api: Api) -> None:
    escalation = api.harness.escalate("g-no-attempt")
    for _ in range(2):  # attempts 2 and 3 of the draft's 3
        assert api.decide(escalation, "retry").status_code == 202
        api.harness.deliver_decisions()
        api.harness.report("g-no-attempt", {"text": "again"})
        (escalation,) = [
            e
            for e in api.harness.state("g-no-attempt").escalations.values()
            if e.status is EscalationStatus.PENDING
        ]

    body = assert_problem(api.decide(escalation, "retry"), 422)

    assert body["detail"].startswith("step 'draft' has used all 3 of its attempts")
    assert (body["attempt"], body["max_attempts"]) == (3, 3)
    assert api.harness.state("g-no-attempt").tasks["draft"].attempt == 3


# --- text the database cannot store ---------------------------------------------------------


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param(("comments", {"text": "a\x00b", "version": 1}), id="comment"),
        pytest.param(("assign", {"assignee": "a\x00b"}), id="assignee"),
        pytest.param(("decision", {"action": "reject", "reason": "bad\x00reason"}), id="reason"),
        pytest.param(("decision", {"action": "approve", "output": {"x": "\x00"}}), id="output"),
        pytest.param(("decision", {"action": "edit", "output": {"text": "\x00"}}), id="edit"),
    ],
)
def test_text_with_a_nul_character_is_refused_as_422_not_a_server_error(
    api: Api, request_body: tuple[str, dict[str, Any]]
) -> None:
    escalation = api.harness.escalate("g-nul")
    action, body = request_body
    if action == "decision":
        body = {**body, "version": 1, "digest": escalation.digest}

    response = api.post(f"{BASE}/{escalation.id}/{action}", body, "admin")

    assert_problem(response, 422)
    assert api.harness.escalation(escalation.id).status is EscalationStatus.PENDING


def test_a_comment_on_a_version_beyond_64_bits_is_a_client_error(api: Api) -> None:
    escalation = api.harness.escalate("g-huge")

    response = api.post(f"{BASE}/{escalation.id}/comments", {"text": "hi", "version": 2**64})

    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
