"""POST /api/v1/workflows/{id}/steps/{step}/retry and /resume over HTTP (FastAPI's
TestClient) on the real PostgreSQL: who may, the answer, the dispatch and audit row
written, and every refusal as a problem document with a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from tests.orchestrator.test_operations import (
    ECHO_INPUT,
    OPERATED,
    announce_echo,
    audit_rows,
    failed_workflow,
    queued_dispatches,
    start,
)
from tests.orchestrator.test_reviews import ReviewHarness, write_playbooks
from tests.review_ui.test_escalations_api import Api, assert_problem

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

WHY = "the agent is fixed"


@pytest.fixture
def review_harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    """The review playbook and one with two parallel steps and one after them."""
    directory = write_playbooks(tmp_path / "playbooks")
    (directory / "operated.yaml").write_text(OPERATED)
    return ReviewHarness(engine, namespace, directory)


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def retry_url(workflow_id: str, step: str = "first") -> str:
    return f"/api/v1/workflows/{workflow_id}/steps/{step}/retry"


def resume_url(workflow_id: str) -> str:
    return f"/api/v1/workflows/{workflow_id}/resume"


def test_an_admin_retries_a_failed_step_and_gets_the_running_workflow(api: Api) -> None:
    failed_workflow(api.harness, "w-api")

    response = api.post(retry_url("w-api"), {"reason": WHY}, who="admin")

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "running"
    assert body["reason"] is None
    assert {t["step"]: (t["status"], t["attempt"]) for t in body["tasks"]} == {
        "first": ("dispatched", 2),
        "side": ("dispatched", 2),
        "second": ("pending", 0),
    }
    assert api.get("/api/v1/workflows/w-api").json() == body
    assert [(d.step, d.attempt) for d in queued_dispatches(api.harness)[-2:]] == [
        ("first", 2),
        ("side", 2),
    ]
    assert audit_rows(api.harness.engine, "w-api") == [
        ("admin", "retry_step", {"step": "first", "reason": WHY, "was": "failed"})
    ]


def test_an_admin_resumes_from_a_step_with_an_edited_input_checked_against_the_schema(
    api: Api,
) -> None:
    failed_workflow(api.harness, "w-resume")
    announce_echo(api.harness.engine, ECHO_INPUT)

    broken = api.post(
        resume_url("w-resume"),
        {"step": "first", "reason": WHY, "input": {"text": 5}},
        who="admin",
    )
    response = api.post(
        resume_url("w-resume"),
        {"step": "first", "reason": WHY, "input": {"text": "fixed", "extra": [1]}},
        who="admin",
    )

    problem = assert_problem(broken, 422)
    assert problem["detail"] == (
        "the edited input breaks the input schema of step 'first': "
        'text: 5 is not of type "string"'
    )
    assert problem["errors"] == [{"field": "text", "message": '5 is not of type "string"'}]
    assert response.status_code == 202, response.text
    tasks = {t["step"]: t for t in response.json()["tasks"]}
    assert tasks["first"]["input"] == {"text": "fixed", "extra": [1]}
    assert api.harness.state("w-resume").tasks["first"].status is TaskStatus.DISPATCHED
    assert [row[1] for row in audit_rows(api.harness.engine, "w-resume")] == ["resume"]


@pytest.mark.parametrize("who", ["reviewer", "analyst"])
def test_only_operators_may_retry_or_resume(api: Api, who: str) -> None:
    before = failed_workflow(api.harness, "w-role")

    assert_problem(api.post(retry_url("w-role"), {"reason": WHY}, who=who), 403)
    assert_problem(api.post(resume_url("w-role"), {"step": "first", "reason": WHY}, who=who), 403)

    assert api.harness.state("w-role") == before


def test_unknown_workflows_and_steps_are_404_or_422_naming_the_steps(api: Api) -> None:
    failed_workflow(api.harness, "w-known")

    no_workflow = assert_problem(api.post(retry_url("nobody"), {"reason": WHY}, who="admin"), 404)
    no_resume = assert_problem(
        api.post(resume_url("nobody"), {"step": "first", "reason": WHY}, who="admin"), 404
    )
    no_step = assert_problem(
        api.post(retry_url("w-known", "third"), {"reason": WHY}, who="admin"), 404
    )
    no_step_to_resume = assert_problem(
        api.post(resume_url("w-known"), {"step": "third", "reason": WHY}, who="admin"), 422
    )

    assert no_workflow["detail"] == no_resume["detail"] == "no workflow with id 'nobody'"
    steps = "workflow w-known has no step 'third'; its steps are: first, side, second"
    assert no_step["detail"] == no_step_to_resume["detail"] == steps


def test_operations_the_workflows_state_does_not_allow_are_409(api: Api) -> None:
    start(api.harness, "w-running", {"text": "going"})
    failed_workflow(api.harness, "w-failed")
    cancel = api.post("/api/v1/workflows/w-failed/cancel", {"reason": "stop"}, who="admin")
    assert cancel.status_code == 409  # failed already: nothing to cancel
    start(api.harness, "w-stopped", {"text": "going"})
    assert api.post("/api/v1/workflows/w-stopped/cancel", {"reason": "x"}, who="admin").is_success

    running_retry = assert_problem(api.post(retry_url("w-running"), {"reason": WHY}, "admin"), 409)
    running_resume = assert_problem(
        api.post(resume_url("w-running"), {"step": "first", "reason": WHY}, "admin"), 409
    )
    cancelled = assert_problem(
        api.post(resume_url("w-stopped"), {"step": "first", "reason": WHY}, "admin"), 409
    )
    not_failed = assert_problem(
        api.post(retry_url("w-failed", "side"), {"reason": WHY}, "admin"), 409
    )

    assert running_retry["detail"] == (
        "step 'first' is dispatched; only a failed step can be retried"
    )
    assert running_resume["detail"] == (
        "workflow w-running is running; only a failed workflow can be resumed"
    )
    assert cancelled["detail"].startswith("workflow w-stopped is already cancelled;")
    assert not_failed["detail"].endswith("to run it again, resume the workflow from it")
    assert api.harness.state("w-running").status is WorkflowStatus.RUNNING


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "x" * 501},
        {"reason": "a\x00b"},
        {"reason": WHY, "why": "x"},
        {"reason": WHY, "input": [1, 2]},
        {"reason": WHY, "input": "text"},
        {"reason": WHY, "input": {"text": "a\x00b"}},
    ],
)
def test_a_bad_body_is_422(api: Api, body: dict[str, Any]) -> None:
    before = failed_workflow(api.harness, "w-body")

    retried = assert_problem(api.post(retry_url("w-body"), body, who="admin"), 422)
    resumed = assert_problem(
        api.post(resume_url("w-body"), {"step": "first", **body}, who="admin"), 422
    )

    assert retried["detail"]
    assert resumed["detail"]
    assert api.harness.state("w-body") == before


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (b'{"reason": "\\ud800"}', "reason"),  # JSON text naming half a surrogate pair
        (b'{"reason": "fixed", "input": {"text": "\\ud800"}}', "input"),
    ],
)
def test_text_that_cannot_be_stored_is_422_naming_it(api: Api, text: bytes, named: str) -> None:
    before = failed_workflow(api.harness, "w-text")
    headers = {**api.auth("admin"), "Content-Type": "application/json"}

    retried = api.client.post(retry_url("w-text"), content=text, headers=headers)
    resume_text = text.replace(b"{", b'{"step": "first", ', 1)
    resumed = api.client.post(resume_url("w-text"), content=resume_text, headers=headers)

    for response in (retried, resumed):
        assert named in assert_problem(response, 422)["detail"]
    assert api.harness.state("w-text") == before


def test_the_routes_document_every_answer(api: Api) -> None:
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]

    for path in (
        "/api/v1/workflows/{workflow_id}/steps/{step}/retry",
        "/api/v1/workflows/{workflow_id}/resume",
    ):
        answers = set(paths[path]["post"]["responses"])
        assert answers == {"202", "400", "401", "403", "404", "409", "422", "429", "503"}
