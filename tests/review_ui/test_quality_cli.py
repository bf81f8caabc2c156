"""`waypost quality ls|show` against the real HTTP app (uvicorn) on the real PostgreSQL:
the table of each version's rates after scripted decisions, a version's verdicts next
to the agent's reasoning, and a refusal as one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.quality.scripted import Scripted
from tests.review_ui.test_mcp_server import serving
from waypost.bus.memory import MemoryBus
from waypost.cli.main import main
from waypost.events import utcnow
from waypost.settings import HttpSettings

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(make_settings: Callable[..., Any], engine: Engine, namespace: str) -> Iterator[Invoke]:
    """`waypost quality ...` as an analyst, after version 2's approval and rejection."""
    scripted = Scripted(engine, namespace)
    at = utcnow() - timedelta(seconds=30)
    approved, rejected = scripted.escalated("2", 2, at=at)
    scripted.decide(approved, "approve", at=at)
    scripted.decide(rejected, "reject", reviewer="rob", at=at)
    app = create_app(
        make_settings(HttpSettings),
        engine=engine,
        admin=MemoryBus().admin(),
        playbooks=scripted.playbooks,
    )
    with engine.begin() as conn:
        token, _ = auth_store.create_token(conn, name="ann", role=Role.ANALYST)
    with serving(app) as url:

        def run(*args: str) -> Result:
            return CliRunner().invoke(
                main, ["quality", *args, "--url", url], env={"WAYPOST_API_TOKEN": token}
            )

        yield run


def test_ls_prints_a_row_per_version(invoke: Invoke) -> None:
    listed = invoke("ls", "--days", "7")

    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split()[:4] == ["CAPABILITY", "VERSION", "RESULTS", "ESCALATED"]
    # Escalated, approved, edited, rejected, retried, agreement (rob and rita split),
    # edit distance (no edits) and drift (none).
    assert row.split() == ["drafter", "2", "2", "100%", "50%", "0%", "50%", "0%", "50%", "—", "-"]


def test_ls_filters_and_prints_json(invoke: Invoke) -> None:
    other = invoke("ls", "--capability", "checker")
    as_json = invoke("ls", "--json")

    assert other.output.strip() == "no agent results in the last 14 day(s)"
    assert '"rejection_rate": 0.5' in as_json.output


def test_show_prints_each_verdict_with_the_agents_reasoning(invoke: Invoke) -> None:
    shown = invoke("show", "drafter", "2")

    assert shown.exit_code == 0, shown.output
    assert "reviewer rob: wrong amount" in shown.output
    assert shown.output.count("agent: the order was paid twice") == 2
    assert "approved" in shown.output


def test_a_refusal_is_one_line_with_the_reason(invoke: Invoke) -> None:
    refused = invoke("show", "drafter", "x" * 201)

    assert refused.exit_code != 0
    assert "version" in refused.output
