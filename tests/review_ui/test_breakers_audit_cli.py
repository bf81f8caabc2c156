"""`waypost breakers open|close` and `waypost audit export|decisions` against the real
HTTP app (uvicorn) on the real PostgreSQL: what each prints or writes, and refusals as
one line with the reason."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from sqlalchemy import insert

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_mcp_server import serving
from waypost.cli.main import main
from waypost.governance.tables import policy_decisions

pytestmark = pytest.mark.integration

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Invoke]:
    with review_harness.engine.begin() as conn:
        admin, _ = auth_store.create_token(conn, name="ops", role=Role.ADMIN)
        analyst, _ = auth_store.create_token(conn, name="ann", role=Role.ANALYST)
    tokens = {"admin": admin, "analyst": analyst}
    with serving(review_app) as url:

        def run(*args: str, who: str = "admin") -> Result:
            return CliRunner().invoke(
                main, [*args, "--url", url], env={"WAYPOST_API_TOKEN": tokens[who]}
            )

        yield run


def test_an_admin_opens_and_closes_a_circuit_from_the_command_line(invoke: Invoke) -> None:
    opened = invoke("breakers", "open", "echo", "--for", "10m", "--reason", "vendor outage")

    assert opened.exit_code == 0, opened.output
    assert "echo" in opened.output
    assert "open" in opened.output
    assert "by hand (ops: vendor outage)" in opened.output
    assert "until 20" in opened.output
    held = invoke("breakers", "open", "echo", "--reason", "still down")
    assert "until closed by hand" in held.output
    assert "by hand (ops: still down)  until closed by hand" in invoke("breakers", "ls").output

    closed = invoke("breakers", "close", "echo", "--reason", "fixed")

    assert closed.exit_code == 0, closed.output
    assert "closed" in closed.output
    assert "by hand" not in closed.output


def test_breaker_refusals_print_the_reason(invoke: Invoke) -> None:
    again = invoke("breakers", "close", "echo", "--reason", "x")
    assert again.exit_code != 0
    assert "closed already" in again.output
    forbidden = invoke("breakers", "open", "echo", "--reason", "x", who="analyst")
    assert forbidden.exit_code != 0
    assert "403" in forbidden.output
    bad = invoke("breakers", "open", "echo", "--for", "soon", "--reason", "x")
    assert bad.exit_code == 2
    assert "is not a duration" in bad.output
    assert invoke("breakers", "open", "echo").exit_code == 2  # --reason is required


def test_the_audit_log_exports_as_csv_and_json_lines(
    invoke: Invoke, review_harness: ReviewHarness
) -> None:
    now = datetime.now(UTC)
    with review_harness.engine.begin() as conn:
        audit.record(
            conn,
            entries=[
                AuditEntry("ada", "cancel", workflow_id=f"wf-{n}", at=now - timedelta(seconds=n))
                for n in range(3)
            ]
            + [AuditEntry("bob", "decision", at=now - timedelta(days=2))],
        )

    as_csv = invoke("audit", "export", "--actor", "ada", who="analyst")
    as_jsonl = invoke("audit", "export", "--format", "jsonl", "--since", "1d", who="analyst")

    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["workflow_id"] for r in rows] == ["wf-0", "wf-1", "wf-2"]
    assert as_jsonl.exit_code == 0, as_jsonl.output
    lines = [json.loads(line) for line in as_jsonl.output.splitlines()]
    assert {line["actor"] for line in lines} == {"ada"}  # bob's is two days old
    assert len(lines) == 3


def test_policy_decisions_print_the_rule_that_decided(
    invoke: Invoke, review_harness: ReviewHarness
) -> None:
    with review_harness.engine.begin() as conn:
        conn.execute(
            insert(policy_decisions).values(
                at=datetime.now(UTC),
                agent="reply",
                capability="reply",
                action="refund",
                outcome="deny",
                cause="denied",
                policy="support",
                policy_file="policies/support.yaml",
                policy_version=3,
                policy_digest="abc",
                rule="actions.deny[0]",
                reason="'refund' is denied",
                context_digest="d",
                detail={"rule_line": 12},
            )
        )

    shown = invoke("audit", "decisions", "--agent", "reply", who="analyst")

    assert shown.exit_code == 0, shown.output
    assert "refund" in shown.output
    assert "support v3 actions.deny[0] (policies/support.yaml:12)" in shown.output
    assert "'refund' is denied" in shown.output
    assert "no policy decisions" in invoke("audit", "decisions", "--agent", "nobody").output
