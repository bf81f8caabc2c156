"""`waypost workflow retry|resume` against the real HTTP app (uvicorn) on the real
PostgreSQL: what each prints, the input it sends, and refusals as one line with the
reason."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from sqlalchemy import Engine

from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.test_operations import OPERATED, failed_workflow
from tests.orchestrator.test_reviews import ReviewHarness, write_playbooks
from tests.review_ui.test_mcp_server import serving
from waypost.cli.main import main

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]


@pytest.fixture
def review_harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    directory = write_playbooks(tmp_path / "playbooks")
    (directory / "operated.yaml").write_text(OPERATED)
    return ReviewHarness(engine, namespace, directory)


@pytest.fixture
def invoke(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Invoke]:
    """`waypost workflow ...` as an admin (or ``role``) against the app."""
    tokens = {}
    with review_harness.engine.begin() as conn:
        for role in (Role.ADMIN, Role.REVIEWER):
            tokens[role], _ = auth_store.create_token(conn, name=f"ops-{role}", role=role)
    with serving(review_app) as url:

        def run(*args: str, role: Role = Role.ADMIN) -> Result:
            return CliRunner().invoke(
                main, ["workflow", *args, "--url", url], env={"WAYPOST_API_TOKEN": tokens[role]}
            )

        yield run


def test_retry_and_resume_print_the_running_workflow(
    invoke: Invoke, review_harness: ReviewHarness, tmp_path: Path
) -> None:
    failed_workflow(review_harness, "w-cli")

    retried = invoke("retry", "w-cli", "first", "--reason", "agent fixed")
    assert retried.exit_code == 0, retried.output
    assert "workflow w-cli  (test.operated)" in retried.output
    assert "running" in retried.output
    assert review_harness.state("w-cli").tasks["first"].attempt == 2

    failed_workflow(review_harness, "w-cli-2")
    edited = tmp_path / "input.json"
    edited.write_text(json.dumps({"text": "from a file"}))
    resumed = invoke(
        "resume", "w-cli-2", "--from", "first", "--reason", "fixed", "--input", f"@{edited}"
    )
    assert resumed.exit_code == 0, resumed.output
    state = review_harness.state("w-cli-2")
    assert state.status is WorkflowStatus.RUNNING
    assert state.tasks["first"].status is TaskStatus.DISPATCHED
    assert state.tasks["first"].input == {"text": "from a file"}


def test_refusals_print_the_reason(invoke: Invoke, review_harness: ReviewHarness) -> None:
    failed_workflow(review_harness, "w-no")

    unknown = invoke("retry", "nobody", "first", "--reason", "x")
    step = invoke("resume", "w-no", "--from", "third", "--reason", "x")
    not_failed = invoke("retry", "w-no", "side", "--reason", "x")
    reviewer = invoke("retry", "w-no", "first", "--reason", "x", role=Role.REVIEWER)
    not_json = invoke("retry", "w-no", "first", "--reason", "x", "--input", "{oops")
    not_object = invoke("resume", "w-no", "--from", "first", "--reason", "x", "--input", "[1]")

    assert unknown.exit_code == 1
    assert "error: no workflow with id 'nobody'" in unknown.output
    assert step.exit_code == 1
    assert "workflow w-no has no step 'third'; its steps are: first, side, second" in step.output
    assert not_failed.exit_code == 1
    assert "step 'side' is cancelled; only a failed step can be retried" in not_failed.output
    assert reviewer.exit_code == 1
    assert "Retrying a step of a workflow needs a token of a role that may operate" in (
        reviewer.output
    )
    assert not_json.exit_code == not_object.exit_code == 2
    assert "not valid JSON" in not_json.output
    assert "give a JSON object" in not_object.output
    assert review_harness.state("w-no").status is WorkflowStatus.FAILED
