"""The workflow page's actions over HTTP (FastAPI's TestClient) on the real PostgreSQL: the
actions partial (which forms show for which workflow, and for whom), and the cancel, retry
and resume forms: 303 back to the workflow page when done, the refused form shown again
with why (409/422), the confirmation required, and only admins allowed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.state import TaskStatus, WorkflowState, WorkflowStatus
from review_ui.console.render import pages
from tests.orchestrator.test_operations import ECHO_INPUT, OPERATED, announce_echo, audit_rows
from tests.review_ui.console.conftest import (
    PLAYBOOKS,
    assert_safe_page,
    csrf_token,
    elements,
    section,
)
from tests.support.failed_workflows import failed_workflow
from waypost.events import default_codec, utcnow
from waypost.topics import Topics

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def playbooks(tmp_path: Path) -> PlaybookRegistry:
    """The console tests' playbooks and one with two parallel steps and one after them."""
    (tmp_path / "operated.yaml").write_text(OPERATED)
    return PlaybookRegistry.load([PLAYBOOKS, tmp_path])


class Workflows:
    """Makes workflows as the orchestrator does, and reads them back."""

    def __init__(self, engine: Engine, playbooks: PlaybookRegistry, namespace: str) -> None:
        self.engine = engine
        self.applier = Applier(
            playbooks=playbooks,
            outgoing=Outgoing(Topics(namespace), default_codec()),
            random=lambda: 0.5,
        )

    def failed(self, workflow_id: str) -> WorkflowState:
        failed_workflow(
            self.engine,
            self.applier,
            workflow_id,
            goal_type="test.operated",
            goal_input={"text": "hello"},
            step="first",
        )
        return self.get(workflow_id)

    def running(self, workflow_id: str) -> WorkflowState:
        goal = NewWorkflow(workflow_id, "test.operated", {"text": "hello"}, utcnow())
        with self.engine.begin() as conn:
            self.applier.plan_new(conn, goals=[goal], now=utcnow())
        return self.get(workflow_id)

    def get(self, workflow_id: str) -> WorkflowState:
        with self.engine.connect() as conn:
            found = workflow_rows.get(conn, workflow_id=workflow_id)
        assert found is not None
        return found


@pytest.fixture
def workflows(engine: Engine, playbooks: PlaybookRegistry, namespace: str) -> Workflows:
    return Workflows(engine, playbooks, namespace)


def partial(workflow: WorkflowState, *, may_operate: bool = True) -> str:
    """The actions partial as the workflow page includes it."""
    template = pages().template("_workflow_actions.html")
    return template.render(workflow=workflow, csrf_token="tok", may_operate=may_operate)


def post(client: TestClient, path: str, **form: Any) -> Any:
    """Submit a console form with the session's CSRF token (the TestClient's response)."""
    return client.post(path, data={"csrf_token": csrf_token(client), **form})


def form_of(html: str, form_id: str) -> str:
    begin = html.index(f'<form id="{form_id}"')
    return html[begin : html.index("</form>", begin)]


# --- the partial ---------------------------------------------------------------------------


def test_a_failed_workflow_offers_retrying_its_failed_step_and_resuming(
    workflows: Workflows,
) -> None:
    html = partial(workflows.failed("w-partial"))

    assert [f["id"] for f in elements(html, "form")] == ["retry-form-first", "resume-form"]
    retry = form_of(html, "retry-form-first")
    assert 'action="/workflows/w-partial/steps/first/retry"' in retry
    assert 'name="csrf_token" value="tok"' in retry
    assert "ValueError: bad input" in retry
    assert json.dumps({"text": "hello"}, indent=2).replace('"', "&#34;") in retry
    assert elements(retry, "input", name="confirm", required="")
    resume = form_of(html, "resume-form")
    options = re.findall(r'<option value="([^"]+)"( selected)?', resume)
    assert options == [("first", " selected"), ("side", ""), ("second", "")]
    assert elements(resume, "input", type="hidden", name="input_step", value="first")
    assert elements(resume, "input", name="confirm", required="")


def test_a_running_workflow_offers_cancelling_and_readers_see_no_actions(
    workflows: Workflows,
) -> None:
    running = workflows.running("w-running")

    html = partial(running)

    assert [f["id"] for f in elements(html, "form")] == ["cancel-form"]
    assert 'action="/workflows/w-running/cancel"' in html
    assert partial(running, may_operate=False).strip() == ""


# --- the forms -----------------------------------------------------------------------------


def test_retrying_the_failed_step_redirects_to_the_workflow_with_a_notice(
    admin: TestClient, workflows: Workflows
) -> None:
    workflows.failed("w-retry")

    response = post(
        admin,
        "/workflows/w-retry/steps/first/retry",
        reason="the agent is fixed",
        input=json.dumps({"text": "hello"}, indent=2),  # left as shown
        confirm="yes",
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/workflows/w-retry?notice=retried"
    state = workflows.get("w-retry")
    assert state.status is WorkflowStatus.RUNNING
    assert state.tasks["first"].status is TaskStatus.DISPATCHED
    assert state.tasks["first"].input == {"text": "hello"}
    assert audit_rows(workflows.engine, "w-retry") == [
        ("ada", "retry_step", {"step": "first", "reason": "the agent is fixed", "was": "failed"})
    ]


def test_resuming_with_a_changed_input_runs_the_step_on_it(
    admin: TestClient, workflows: Workflows
) -> None:
    workflows.failed("w-resume")

    response = post(
        admin,
        "/workflows/w-resume/resume",
        step="first",
        input_step="first",
        reason="fixed the text",
        input='{"text": "fixed"}',
        confirm="yes",
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/workflows/w-resume?notice=resumed"
    assert workflows.get("w-resume").tasks["first"].input == {"text": "fixed"}


def test_cancelling_a_running_workflow(admin: TestClient, workflows: Workflows) -> None:
    workflows.running("w-cancel")

    response = post(admin, "/workflows/w-cancel/cancel", reason="duplicate", confirm="yes")

    assert response.status_code == 303
    assert response.headers["location"] == "/workflows/w-cancel?notice=cancelled"
    assert workflows.get("w-cancel").status is WorkflowStatus.CANCELLED


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        (
            "/workflows/w-refused/steps/first/retry",
            {"reason": "x"},
            "Tick “I understand” to confirm.",
        ),
        ("/workflows/w-refused/steps/first/retry", {"confirm": "yes"}, "Give a reason"),
        (
            "/workflows/w-refused/steps/first/retry",
            {"reason": "x", "confirm": "yes", "input": "{not json"},
            "The input is not valid JSON",
        ),
        (
            "/workflows/w-refused/resume",
            {"step": "first", "reason": "x", "confirm": "yes", "input": "[1]"},
            "The input must be a JSON object",
        ),
        (
            "/workflows/w-refused/resume",
            {"step": "second", "reason": "x", "confirm": "yes"},
            "step &#39;first&#39; failed and resuming from &#39;second&#39; does not run it again",
        ),
    ],
)
def test_a_refused_form_is_shown_again_with_why_and_what_was_sent(
    admin: TestClient, workflows: Workflows, path: str, form: dict[str, str], message: str
) -> None:
    before = workflows.failed("w-refused")

    response = post(admin, path, **form)

    assert response.status_code == 422
    html = assert_safe_page(response)
    assert message in html
    assert 'role="alert"' in html
    if form.get("reason"):
        assert f'name="reason" value="{form["reason"]}"' in html
    assert workflows.get("w-refused") == before


def test_an_input_breaking_the_schema_is_shown_again_with_each_error(
    admin: TestClient, workflows: Workflows
) -> None:
    workflows.failed("w-schema")
    announce_echo(workflows.engine, ECHO_INPUT)

    response = post(
        admin,
        "/workflows/w-schema/steps/first/retry",
        reason="x",
        input='{"text": 5}',
        confirm="yes",
    )

    assert response.status_code == 422
    error = section(response.text, '<div id="retry-first-error"')
    assert "the edited input breaks the input schema of step &#39;first&#39;" in error
    assert "<li>text: 5 is not of type &#34;string&#34;</li>" in error
    assert "{&#34;text&#34;: 5}" in response.text  # what was sent, kept


def test_an_input_changed_for_another_step_shows_the_chosen_steps_own_input(
    admin: TestClient, workflows: Workflows
) -> None:
    workflows.failed("w-other")

    response = post(
        admin,
        "/workflows/w-other/resume",
        step="side",
        input_step="first",
        reason="x",
        input='{"text": "edited for first"}',
        confirm="yes",
    )

    assert response.status_code == 422
    html = response.text
    assert "you chose to resume from “side”" in html
    assert elements(html, "input", type="hidden", name="input_step", value="side")
    assert 'value="side" selected' in html
    assert "edited for first" not in html
    assert json.dumps({"text": "hello"}, indent=2).replace('"', "&#34;") in html


def test_what_the_workflows_state_does_not_allow_is_409(
    admin: TestClient, workflows: Workflows
) -> None:
    workflows.running("w-busy")

    retried = post(admin, "/workflows/w-busy/steps/first/retry", reason="x", confirm="yes")
    resumed = post(admin, "/workflows/w-busy/resume", step="first", reason="x", confirm="yes")
    workflows.failed("w-over")
    cancelled = post(admin, "/workflows/w-over/cancel", reason="x", confirm="yes")

    assert retried.status_code == resumed.status_code == cancelled.status_code == 409
    assert "only a failed step can be retried" in retried.text
    assert "only a failed workflow can be resumed" in resumed.text
    assert "is already failed" in cancelled.text
    assert elements(cancelled.text, "form", id="cancel-form")


def test_an_unknown_workflow_is_the_404_page(admin: TestClient) -> None:
    response = post(admin, "/workflows/nobody/resume", step="a", reason="x", confirm="yes")

    assert response.status_code == 404
    assert "no workflow with id &#39;nobody&#39;" in response.text


def test_only_admins_may_act(reviewer: TestClient, workflows: Workflows) -> None:
    before = workflows.failed("w-forbidden")

    response = post(reviewer, "/workflows/w-forbidden/steps/first/retry", reason="x", confirm="yes")

    assert response.status_code == 403
    assert workflows.get("w-forbidden") == before


def test_a_form_without_the_csrf_token_is_refused(admin: TestClient, workflows: Workflows) -> None:
    before = workflows.failed("w-csrf")

    response = admin.post(
        "/workflows/w-csrf/steps/first/retry", data={"reason": "x", "confirm": "yes"}
    )

    assert response.status_code == 403
    assert workflows.get("w-csrf") == before
