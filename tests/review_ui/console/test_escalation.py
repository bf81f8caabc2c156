"""The escalation page: what it shows, and deciding, commenting, claiming from it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import audit
from orchestrator.store import escalations as escalation_rows
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import Input, RetryDue, TaskAttemptFailed
from orchestrator.workflow.state import EscalationState, TaskError
from tests.review_ui.console.conftest import (
    PLAYBOOKS,
    Escalations,
    assert_safe_page,
    csrf_token,
    elements,
    htmx,
    section,
)
from waypost.events import new_id, utcnow

pytestmark = pytest.mark.integration

ATTACK = '<script>alert(1)</script><div hx-get="/logout" hx-trigger="load">x</div>'
# A step with one attempt whose result waits for approval, and one whose failure asks a
# person for the output (the human fallback).
ONE_ATTEMPT = """\
type: test.once
steps:
  - name: triage
    capability: drafter
    retries: 0
    requires_approval: true
    input: {subject: $goal.subject}
"""
HUMAN_FALLBACK = """\
type: test.rescue
steps:
  - name: triage
    capability: drafter
    retries: 1
    on_failure: escalate
    input: {subject: $goal.subject}
    output_schema: {type: object, required: [text]}
"""


@pytest.fixture
def playbooks(tmp_path: Path) -> PlaybookRegistry:
    """The console tests' playbooks and the two above."""
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "once.yaml").write_text(ONE_ATTEMPT)
    (directory / "rescue.yaml").write_text(HUMAN_FALLBACK)
    return PlaybookRegistry.load([PLAYBOOKS, directory])


def failed_everywhere(escalations: Escalations, subject: str) -> str:
    """A `test.rescue` workflow whose triage failed both attempts, waiting for a person
    since a minute ago; its escalation's id."""
    at = utcnow() - timedelta(minutes=1)
    workflow_id = new_id()
    goal = NewWorkflow(workflow_id, "test.rescue", {"subject": subject}, at)
    with escalations.engine.begin() as conn:
        escalations.applier.plan_new(conn, goals=[goal], now=at)

    def apply(event: Input, now: datetime) -> None:
        with escalations.engine.begin() as conn:
            states = workflow_rows.lock(conn, ids=[workflow_id])
            applied = escalations.applier.apply(
                conn, states=states, inputs=[(workflow_id, event)], now=now
            )
            assert applied.applied == 1, applied.notes

    with escalations.engine.connect() as conn:
        state = workflow_rows.get(conn, workflow_id=workflow_id)
    assert state is not None
    task_id = state.tasks["triage"].id
    apply(TaskAttemptFailed(task_id, 1, TaskError("Upstream", "timeout talking to the CRM")), at)
    apply(RetryDue(task_id), at + timedelta(seconds=5))
    failed = TaskAttemptFailed(task_id, 2, TaskError("Upstream", "the CRM refused: 503"))
    apply(failed, at + timedelta(seconds=6))
    with escalations.engine.connect() as conn:
        state = workflow_rows.get(conn, workflow_id=workflow_id)
    assert state is not None
    (escalation_id,) = state.escalations
    return escalation_id


def current(engine: Engine, escalation_id: str) -> EscalationState:
    with engine.connect() as conn:
        found = escalation_rows.get(conn, escalation_id=escalation_id)
    assert found is not None
    return found[1]


def decide(
    client: TestClient,
    engine: Engine,
    escalation_id: str,
    action: str,
    *,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Response:
    """Post the decision form as the page would (what it showed, the CSRF token)."""
    escalation = current(engine, escalation_id)
    data = {
        "csrf_token": csrf_token(client),
        "action": action,
        "version": str(escalation.version),
        "digest": escalation.digest,
        **fields,
    }
    return client.post(f"/escalations/{escalation_id}/decision", data=data, headers=headers)


def test_the_page_shows_the_escalation_and_its_workflow(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = escalations.open(
        "Refund for order 42",
        output={"text": "We refunded you.", "tone": "friendly"},
        reasoning=("looked up the order", "refund is within policy"),
    )

    response = reviewer.get(f"/escalations/{escalation_id}")

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert "<h1>Refund for order 42</h1>" in html
    assert "the step requires a reviewer&#39;s approval" in html
    assert "0.90" in html  # confidence
    assert "looked up the order" in html
    assert "59m left" in html
    # Timeline in playbook order, the step under review marked.
    steps = re.findall(r"<td><strong>(\w+)</strong>", html)
    assert steps == ["draft", "check", "send"]
    assert "awaiting review" in html
    # The step graph: three boxes, two arrows into `send`, colours by class only.
    svg = section(html, '<svg class="dag"')
    assert svg.count("<rect") == 3
    assert svg.count('class="dag-edge"') == 2
    assert 'class="dag-node status-awaiting_review current"' in svg
    # Inputs as JSON.
    assert "&#34;subject&#34;: &#34;Refund for order 42&#34;" in html
    # Forms bound to what is shown.
    for form_id in ("approve-form", "retry-form", "reject-form", "edit-form"):
        (form,) = elements(html, "form", id=form_id)
        assert form["action"] == f"/escalations/{escalation_id}/decision"
    assert elements(html, "input", name="version", value="1")
    assert elements(html, "textarea", id="edit-output")
    assert "Output schema of step draft" in html


def test_the_workflow_section_links_to_the_workflow_s_trace(
    make_client: Callable[..., TestClient], escalations: Escalations
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    escalation_id = escalations.open(traceparent=f"00-{trace_id}-b7ad6b7169203331-01")
    linked = make_client("rita", trace_url_template="https://jaeger.example/trace/{trace_id}")
    plain = make_client("rob")

    html = assert_safe_page(linked.get(f"/escalations/{escalation_id}"))
    (link,) = elements(section(html, '<section class="workflow"'), "a")
    assert link["href"] == f"https://jaeger.example/trace/{trace_id}"
    assert link["rel"] == "noopener noreferrer"
    # Without a template the trace id is still shown, with no link.
    unlinked = section(
        assert_safe_page(plain.get(f"/escalations/{escalation_id}")), '<section class="workflow"'
    )
    assert f"Trace {trace_id}" in unlinked
    assert "jaeger" not in unlinked


def test_agent_output_is_shown_as_untrusted_text(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = escalations.open(
        ATTACK, output={"text": ATTACK}, reasoning=(ATTACK,), goal_input={"subject": ATTACK}
    )

    html = assert_safe_page(reviewer.get(f"/escalations/{escalation_id}"))

    frame = section(html, '<section class="untrusted" hx-disable')
    assert "Agent output" in frame
    assert "untrusted" in frame
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in frame
    assert "&lt;div hx-get=&#34;/logout&#34; hx-trigger=&#34;load&#34;&gt;" in frame
    assert "<script>alert" not in html
    assert not elements(html, hx_get="/logout")
    assert not elements(html, hx_trigger="load")
    # The same text in the inbox is escaped too.
    inbox = assert_safe_page(reviewer.get("/inbox"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in inbox
    assert not elements(inbox, hx_get="/logout")


def test_approve_by_form(reviewer: TestClient, escalations: Escalations, engine: Engine) -> None:
    escalation_id = escalations.open("Approve me")

    response = decide(reviewer, engine, escalation_id, "approve")

    assert response.status_code == 303
    assert response.headers["location"] == f"/escalations/{escalation_id}?notice=approve"
    escalation = current(engine, escalation_id)
    assert escalation.status.value == "decided"
    assert escalation.decision is not None
    assert escalation.decision.action == "approve"
    assert escalation.decision.reviewer == "rita"
    page = reviewer.get(response.headers["location"]).text
    assert "Approved: the workflow resumes" in page
    assert not elements(page, "form", id="approve-form")  # decided: no more forms
    assert re.search(r'class="verdict verdict-approve">approve</span> by <strong>rita', page)


def test_htmx_decisions_get_the_escalation_block(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Via htmx")

    response = decide(reviewer, engine, escalation_id, "retry", headers=htmx("escalation"))

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<article id="escalation"')
    assert "<html" not in response.text
    assert "Sent back to the agent for another attempt." in response.text
    assert current(engine, escalation_id).decision is not None


def test_an_edit_with_invalid_json_keeps_the_text_and_says_why(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Bad JSON")
    typed = '{"text": "Hello",\n "tone": }'

    response = decide(reviewer, engine, escalation_id, "edit", output=typed)

    assert response.status_code == 422
    html = assert_safe_page(response)
    error = section(html, '<div id="edit-error"')
    assert "not valid JSON: Expecting value (line 2, column 10)" in error
    textarea = section(html, '<textarea id="edit-output"')
    assert "{&#34;text&#34;: &#34;Hello&#34;,\n &#34;tone&#34;: }" in textarea
    assert current(engine, escalation_id).status.value == "pending"


def test_an_edit_breaking_the_output_schema_shows_the_schema_errors(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Bad schema")
    typed = json.dumps({"tone": "rude"})

    response = decide(reviewer, engine, escalation_id, "edit", output=typed)

    assert response.status_code == 422
    error = section(response.text, '<div id="edit-error"')
    assert "breaks the step&#39;s output schema" in error
    assert "<li>" in error
    assert "text" in error
    assert "rude" in error
    assert "{&#34;tone&#34;: &#34;rude&#34;}" in section(
        response.text, '<textarea id="edit-output"'
    )
    assert current(engine, escalation_id).status.value == "pending"


def test_an_edit_that_is_not_an_object_is_refused(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Array")

    response = decide(reviewer, engine, escalation_id, "edit", output="[1, 2]")

    assert response.status_code == 422
    assert "the output must be a JSON object" in response.text


def test_a_valid_edit_is_accepted(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Good edit")

    response = decide(
        reviewer,
        engine,
        escalation_id,
        "edit",
        output='{"text": "Better words", "tone": "formal"}',
        reason="warmer",
    )

    assert response.status_code == 303
    decision = current(engine, escalation_id).decision
    assert decision is not None
    assert decision.action == "edit"
    assert decision.output == {"text": "Better words", "tone": "formal"}
    assert decision.reason == "warmer"


def test_a_rejection_needs_a_reason(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Reject me")

    refused = decide(reviewer, engine, escalation_id, "reject", reason="   ")
    accepted = decide(reviewer, engine, escalation_id, "reject", reason="Wrong customer")

    assert refused.status_code == 422
    error = section(refused.text, '<p id="reject-error"')
    assert "a rejection needs a reason" in error
    assert accepted.status_code == 303
    decision = current(engine, escalation_id).decision
    assert decision is not None
    assert (decision.action, decision.reason) == ("reject", "Wrong customer")


def test_a_stale_decision_is_a_conflict_with_a_reload_link(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Twice")
    seen = current(engine, escalation_id)
    decide(reviewer, engine, escalation_id, "approve")

    response = reviewer.post(
        f"/escalations/{escalation_id}/decision",
        data={
            "csrf_token": csrf_token(reviewer),
            "action": "reject",
            "version": str(seen.version),
            "digest": seen.digest,
            "reason": "too late",
        },
    )

    assert response.status_code == 409
    html = assert_safe_page(response)
    conflict = section(html, '<div id="conflict"')
    assert "already decided: approve by rita" in conflict
    assert elements(conflict, "a", href=f"/escalations/{escalation_id}")
    assert not elements(html, "form", id="approve-form")  # decided: nothing left to do


def test_a_changed_version_is_a_conflict(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Changed")
    digest = current(engine, escalation_id).digest

    response = reviewer.post(
        f"/escalations/{escalation_id}/decision",
        data={
            "csrf_token": csrf_token(reviewer),
            "action": "approve",
            "version": "7",
            "digest": digest,
        },
    )

    assert response.status_code == 409
    html = assert_safe_page(response)
    conflict = section(html, '<div id="conflict"')
    assert "changed since you saw it (you saw version 7, it is at version 1)" in conflict
    # The page shows the escalation as it is now, marked so that the a key does not
    # approve it before the reviewer has read it (console.js); the buttons still do.
    assert "This page now shows version 1: read it again before you decide." in conflict
    (article,) = elements(html, "article", id="escalation")
    assert "data-conflict" in article
    assert elements(section(html, '<form id="approve-form"'), "input", name="version", value="1")
    # A page loaded afresh has no such mark.
    (fresh,) = elements(reviewer.get(f"/escalations/{escalation_id}").text, "article")
    assert "data-conflict" not in fresh


def test_someone_elses_claim_is_a_conflict(
    make_client: Callable[..., TestClient], escalations: Escalations, engine: Engine
) -> None:
    rita, rob = make_client("rita"), make_client("rob")
    escalation_id = escalations.open("Held")
    rob.post(f"/escalations/{escalation_id}/claim", data={"csrf_token": csrf_token(rob)})

    page = rita.get(f"/escalations/{escalation_id}").text
    response = decide(rita, engine, escalation_id, "approve")

    assert "Claimed by rob: only they or an admin can decide it." in page
    assert response.status_code == 409
    assert "claimed by rob" in response.text


def test_an_analyst_reads_but_may_not_decide(
    analyst: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Look only")

    page = analyst.get(f"/escalations/{escalation_id}")
    response = decide(analyst, engine, escalation_id, "approve")

    assert page.status_code == 200
    assert "can read escalations but not decide them" in page.text
    assert not elements(page.text, "form", id="approve-form")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "403 · Forbidden" in assert_safe_page(response)
    assert current(engine, escalation_id).status.value == "pending"


def test_claim_unclaim_and_assign(
    make_client: Callable[..., TestClient], escalations: Escalations, engine: Engine
) -> None:
    rita, ada = make_client("rita"), make_client("ada")
    escalation_id = escalations.open("Pass it on")
    url = f"/escalations/{escalation_id}"

    claimed = rita.post(f"{url}/claim", data={"csrf_token": csrf_token(rita)})
    after_claim = current(engine, escalation_id).assignee
    unclaimed = rita.post(f"{url}/unclaim", data={"csrf_token": csrf_token(rita)})
    after_unclaim = current(engine, escalation_id).assignee
    admin_page = ada.get(url).text
    assigned = ada.post(
        f"{url}/assign",
        data={"csrf_token": csrf_token(ada), "assignee": "rob"},
        headers=htmx("escalation"),
    )
    refused = rita.post(f"{url}/assign", data={"csrf_token": csrf_token(rita), "assignee": "rita"})

    assert claimed.status_code == unclaimed.status_code == 303
    assert claimed.headers["location"] == f"{url}?notice=claim"
    assert (after_claim, after_unclaim) == ("rita", None)
    (picker,) = elements(admin_page, "select", name="assignee")
    assert [
        o["value"] for o in elements(section(admin_page, '<select id="assignee"'), "option")
    ] == ["ada", "ann", "rita", "rob"]
    assert picker is not None
    assert assigned.status_code == 200
    assert "Assigned." in assigned.text
    assert current(engine, escalation_id).assignee == "rob"
    assert refused.status_code == 403  # only admins assign
    with engine.connect() as conn:
        actions = [e.action for e in audit.for_escalation(conn, escalation_id=escalation_id)]
    assert actions == ["opened", "claim", "unclaim", "assign"]


def test_comments_are_listed_and_recorded(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Talk about it")
    url = f"/escalations/{escalation_id}/comments"

    empty = reviewer.post(url, data={"csrf_token": csrf_token(reviewer), "version": "1"})
    added = reviewer.post(
        url,
        data={"csrf_token": csrf_token(reviewer), "version": "1", "text": "Check <b>tone</b>"},
        headers=htmx("comments"),
    )

    assert empty.status_code == 422
    assert "a comment needs some text" in empty.text
    assert added.status_code == 200
    assert added.text.lstrip().startswith('<section id="comments"')
    assert "Check &lt;b&gt;tone&lt;/b&gt;" in added.text
    # The history table comes along, swapped out of band.
    assert 'id="history" class="history" aria-labelledby="history-h" hx-swap-oob="true"' in (
        added.text
    )
    page = reviewer.get(f"/escalations/{escalation_id}").text
    history = section(page, '<section id="history"')
    assert "comment" in history
    assert "rita" in history
    assert current(engine, escalation_id).status.value == "pending"


def test_the_history_shows_who_did_what(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Audited")
    digest = current(engine, escalation_id).digest
    decide(reviewer, engine, escalation_id, "approve")

    html = reviewer.get(f"/escalations/{escalation_id}").text

    history = section(html, '<section id="history"')
    rows = re.findall(r"<td>(waypost|rita)</td>\s*<td>(\w+)</td>", history)
    assert [action for _, action in rows] == ["opened", "decide"]
    assert digest[:12] in history


def test_similar_past_decisions_are_listed(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    earlier = escalations.open("Refund for order 41", output={"text": "Refund sent"})
    decide(reviewer, engine, earlier, "reject", reason="Order was never paid")
    now = escalations.open("Refund for order 41", output={"text": "Refund sent"})

    html = reviewer.get(f"/escalations/{now}").text

    similar = section(html, '<section class="similar"')
    assert elements(similar, "a", href=f"/escalations/{earlier}")
    assert "Order was never paid" in similar
    assert "100%" in similar
    assert "verdict-reject" in similar


def test_an_unknown_escalation_is_an_html_404(reviewer: TestClient) -> None:
    response = reviewer.get("/escalations/no-such-thing")

    assert response.status_code == 404
    html = assert_safe_page(response)
    assert "Escalation not found" in html
    assert "no-such-thing" in html


@pytest.mark.parametrize("path", ["/escalations/x/claim", "/escalations/x/decision"])
def test_deciding_an_unknown_escalation_is_a_404(reviewer: TestClient, path: str) -> None:
    data = {
        "csrf_token": csrf_token(reviewer),
        "action": "approve",
        "version": "1",
        "digest": "0" * 64,
    }

    response = reviewer.post(path, data=data)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_a_comment_on_a_version_the_escalation_has_left_is_refused_keeping_the_text(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Commented late")
    decide(reviewer, engine, escalation_id, "approve")  # version 2 from now on
    url = f"/escalations/{escalation_id}/comments"
    data = {"csrf_token": csrf_token(reviewer), "version": "1", "text": "Looks right to me"}

    refused = reviewer.post(url, data=data, headers=htmx("comments"))
    accepted = reviewer.post(url, data={**data, "version": "2"}, headers=htmx("comments"))

    assert refused.status_code == 409
    assert refused.text.lstrip().startswith('<section id="comments"')
    conflict = section(refused.text, '<div class="conflict"')
    assert "you saw version 1, it is at version 2" in conflict
    assert "Looks right to me" in section(refused.text, '<textarea id="comment-text"')
    assert accepted.status_code == 200
    with engine.connect() as conn:
        trail = audit.for_escalation(conn, escalation_id=escalation_id)
    assert [(e.action, e.version) for e in trail] == [("opened", 1), ("decide", 1), ("comment", 2)]


def test_a_step_with_no_attempt_left_is_not_offered_for_retry(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    last = escalations.open("Only once", goal_type="test.once")
    more = escalations.open("Three times")

    page = assert_safe_page(reviewer.get(f"/escalations/{last}"))
    response = decide(reviewer, engine, last, "retry")

    assert not elements(page, "form", id="retry-form")
    assert (
        "step &#39;triage&#39; has used its only attempt, so it cannot be retried; approve, "
        "edit or reject the result." in section(page, '<p id="retry-refused"')
    )
    assert elements(page, "form", id="approve-form")
    assert response.status_code == 422
    assert "has used its only attempt" in response.text
    assert current(engine, last).status.value == "pending"
    other = reviewer.get(f"/escalations/{more}").text
    assert "attempt 2 of 3" in section(other, '<form id="retry-form"')
    assert not elements(other, "p", id="retry-refused")


def test_when_every_attempt_failed_the_page_shows_the_failures_not_an_output(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = failed_everywhere(escalations, "Sync the CRM")

    html = assert_safe_page(reviewer.get(f"/escalations/{escalation_id}"))

    shown = section(html, '<section class="untrusted" hx-disable')
    assert "No output: every attempt failed" in shown
    assert "null" not in shown
    assert "Last error: <code>Upstream</code>: the CRM refused: 503" in shown
    attempts = re.findall(r"<li>(.*?)</li>", section(shown, '<ol class="attempts'))
    assert attempts == [
        "#1 on drafter → failed: Upstream: timeout talking to the CRM",
        "#2 on drafter → failed: Upstream: the CRM refused: 503",
    ]
    assert not elements(html, "form", id="approve-form")
    assert elements(html, "form", id="retry-form")  # a whole new run: always offered
    textarea = section(html, '<textarea id="edit-output"')
    assert textarea.rstrip().endswith("{}")
    # The reviewer writes the output by hand.
    response = decide(reviewer, engine, escalation_id, "edit", output='{"text": "synced by hand"}')
    assert response.status_code == 303
    decision = current(engine, escalation_id).decision
    assert decision is not None
    assert decision.output == {"text": "synced by hand"}
