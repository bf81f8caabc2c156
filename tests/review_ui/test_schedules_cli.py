"""`waypost schedule add|ls|pause|resume|rm` against the real HTTP app (uvicorn) on the
real PostgreSQL: what each prints, and refusals as one line with the reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_mcp_server import serving
from waypost.cli.main import main

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Invoke]:
    with review_harness.engine.begin() as conn:
        token, _ = auth_store.create_token(conn, name="ops", role=Role.ADMIN)
    with serving(review_app) as url:

        def run(*args: str) -> Result:
            return CliRunner().invoke(
                main, ["schedule", *args, "--url", url], env={"WAYPOST_API_TOKEN": token}
            )

        yield run


def test_the_schedule_commands_manage_a_schedule(invoke: Invoke) -> None:
    added = invoke(
        "add",
        "tickets",
        "--every",
        "1h",
        "--catch-up",
        "bounded:2",
        "--goal-type",
        "support.ticket",
        "--input",
        '{"subject": "hourly ${slot}", "body": "at ${fire_time}"}',
    )
    assert added.exit_code == 0, added.output
    assert "tickets" in added.output
    assert "every 1h -> support.ticket" in added.output
    assert "catch-up bounded:2  (api)" in added.output
    listed = invoke("ls")
    assert listed.exit_code == 0
    assert "next 20" in listed.output
    paused = invoke("pause", "tickets")
    assert paused.exit_code == 0
    assert "paused" in paused.output
    resumed = invoke("resume", "tickets")
    assert resumed.exit_code == 0
    assert "next 20" in resumed.output
    removed = invoke("rm", "tickets")
    assert removed.exit_code == 0
    assert "removed tickets" in removed.output
    assert "no schedules" in invoke("ls").output


def test_refusals_print_the_reason(invoke: Invoke) -> None:
    bad = invoke("add", "x", "--cron", "61 * * * *", "--goal-type", "support.ticket")
    assert bad.exit_code == 1
    assert "(422)" in bad.output
    assert "'61 * * * *' is not a valid cron expression" in bad.output
    missing = invoke("pause", "nope")
    assert missing.exit_code == 1
    assert "no schedule named 'nope'" in missing.output
    both = invoke("add", "x", "--cron", "* * * * *", "--every", "1s", "--goal-type", "a")
    assert both.exit_code == 2
    assert "exactly one of --cron and --every" in both.output
    catch_up = invoke("add", "x", "--every", "1s", "--catch-up", "lots", "--goal-type", "a")
    assert catch_up.exit_code == 2
    assert "bounded:N" in catch_up.output
