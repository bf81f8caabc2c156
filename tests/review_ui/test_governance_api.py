"""GET /api/v1/policy-decisions, /api/v1/budgets and /api/v1/audit over HTTP (FastAPI's
TestClient) on the real PostgreSQL: filters, keyset pages, the rule that decided, spend,
the exports, who may read them, and refusals as problem documents."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.policy_limits import NOT_READ, limits_of
from tests.orchestrator.test_reviews import ReviewHarness
from tests.review_ui.test_escalations_api import Api, assert_problem
from waypost.governance import repository
from waypost.governance.engine import utc_day
from waypost.governance.model import Spend
from waypost.governance.tables import policy_decisions
from waypost.settings import GovernanceSettings, HttpSettings

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    """NOW as the test starts: relative filters ("35m") are read against the app's
    clock, which a test running long after this module was imported must match."""
    monkeypatch.setitem(globals(), "NOW", datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def api(review_app: FastAPI, review_harness: ReviewHarness) -> Iterator[Api]:
    with TestClient(review_app, raise_server_exceptions=False) as client:
        yield Api(client, review_harness)


def decide(engine: Engine, minutes_ago: float, agent: str, action: str, outcome: str) -> None:
    """A policy decision as the gate records one (denials name their rule)."""
    ruled = outcome != "allow"
    with engine.begin() as conn:
        conn.execute(
            insert(policy_decisions).values(
                at=NOW - timedelta(minutes=minutes_ago),
                agent=agent,
                capability=agent,
                workflow_id="wf-1",
                task_id="wf-1:work",
                action=action,
                outcome=outcome,
                cause="denied" if ruled else "no_policy",
                policy="support" if ruled else None,
                policy_file="policies/support.yaml" if ruled else None,
                policy_version=3 if ruled else None,
                policy_digest="abc" if ruled else None,
                rule="actions.deny[0]" if ruled else None,
                reason=f"{action} by {agent}: {outcome}",
                context_digest="d",
                detail={"rule_line": 12, "risk": "high"} if ruled else {},
            )
        )


@pytest.fixture
def decisions(api: Api) -> None:
    engine = api.harness.engine
    decide(engine, 50, "reply", "send_email", "allow")
    decide(engine, 40, "reply", "refund", "deny")
    decide(engine, 30, "triage", "send_email", "allow")
    decide(engine, 20, "reply", "send_email", "require_approval")
    decide(engine, 10, "reply", "send_email", "allow")


def test_decisions_come_newest_first_with_the_rule_that_decided(api: Api, decisions: None) -> None:
    body = api.get("/api/v1/policy-decisions", who="analyst").json()

    assert [(d["agent"], d["action"], d["outcome"]) for d in body["items"]] == [
        ("reply", "send_email", "allow"),
        ("reply", "send_email", "require_approval"),
        ("triage", "send_email", "allow"),
        ("reply", "refund", "deny"),
        ("reply", "send_email", "allow"),
    ]
    assert body["next_cursor"] is None
    refund = body["items"][3]
    assert refund["rule"] == {
        "policy": "support",
        "version": 3,
        "digest": "abc",
        "path": "actions.deny[0]",
        "file": "policies/support.yaml",
        "line": 12,
    }
    assert (refund["risk"], refund["reason"]) == ("high", "refund by reply: deny")
    assert body["items"][0]["rule"] is None


def test_decisions_filter_and_page_without_gaps(api: Api, decisions: None) -> None:
    def page(**params: Any) -> dict[str, Any]:
        response = api.get("/api/v1/policy-decisions", who="admin", **params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    first = page(agent="reply", action="send_email", limit=2)
    second = page(agent="reply", action="send_email", limit=2, cursor=first["next_cursor"])
    assert [d["outcome"] for d in first["items"] + second["items"]] == [
        "allow",
        "require_approval",
        "allow",
    ]
    assert second["next_cursor"] is None
    assert [d["action"] for d in page(outcome="deny")["items"]] == ["refund"]
    assert len(page(since="35m")["items"]) == 3
    recent = page(since=(NOW - timedelta(minutes=35)).isoformat(), until="15m")
    assert [d["agent"] for d in recent["items"]] == ["reply", "triage"]


def test_budgets_show_todays_spend_and_say_where_the_limits_are(api: Api) -> None:
    with api.harness.engine.begin() as conn:
        for agent, spend in (("reply", Spend(1200, 0.25)), ("echo", Spend(7, 0.0))):
            repository.add_spend(
                connection=conn,
                agent=agent,
                day=utc_day(NOW),
                workflow_id=None,
                spend=spend,
                now=NOW,
            )
        repository.add_spend(
            connection=conn,
            agent="reply",
            day="2000-01-01",
            workflow_id=None,
            spend=Spend(5),
            now=NOW,
        )

    today = api.get("/api/v1/budgets", who="analyst").json()
    back_then = api.get("/api/v1/budgets", who="analyst", day="2000-01-01").json()

    assert today["day"] == utc_day(NOW)
    assert (today["limits_known"], today["limits_source"]) == (False, NOT_READ)
    assert [(b["agent"], b["tokens"], b["cost_usd"], b["limits"]) for b in today["items"]] == [
        ("echo", 7, 0.0, []),
        ("reply", 1200, 0.25, []),
    ]
    assert [(b["agent"], b["tokens"]) for b in back_then["items"]] == [("reply", 5)]
    assert_problem(api.get("/api/v1/budgets", who="admin", day="2000-02-30"), 422)


def test_an_app_given_the_policy_dirs_knows_the_limits(tmp_path: Path) -> None:
    class WithPolicies(HttpSettings, GovernanceSettings):
        """HTTP settings that also name the policy directories."""

    (tmp_path / "reply.yaml").write_text(
        "name: reply\nversion: 1\napplies_to: {agents: [reply]}\nbudgets:\n"
        "  per_day: {tokens: 1000}\n"
    )
    limits = limits_of(WithPolicies(policy_dirs=[tmp_path]))

    assert limits.policies is not None
    assert [p.name for p in limits.policies.policies] == ["reply"]
    assert str(tmp_path) in limits.source
    broken_dir = tmp_path / "broken"
    broken_dir.mkdir()
    (broken_dir / "broken.yaml").write_text("name: [")
    for directory in (broken_dir, tmp_path / "missing"):
        broken = limits_of(WithPolicies(policy_dirs=[directory]))
        assert broken.policies is None
        assert "cannot be read" in broken.source


@pytest.fixture
def entries(api: Api) -> list[AuditEntry]:
    made = [
        AuditEntry("ada", "cancel", workflow_id="wf-1", detail={"reason": "dup"}),
        AuditEntry("waypost:breaker", "circuit_opened", detail={"capability": "echo"}),
        AuditEntry("rita", "decision", escalation_id="e-1", workflow_id="wf-2", version=2),
        AuditEntry("ada", "user_added", detail={"name": "=cmd", "role": "reviewer"}),
    ]
    at = [NOW - timedelta(minutes=40 - 10 * n) for n in range(len(made))]
    with api.harness.engine.begin() as conn:
        audit.record(conn, entries=[replace(e, at=t) for e, t in zip(made, at, strict=True)])
    return made


def test_the_audit_log_filters_and_pages(api: Api, entries: list[AuditEntry]) -> None:
    body = api.get("/api/v1/audit", who="analyst", limit=3).json()
    rest = api.get("/api/v1/audit", who="analyst", limit=3, cursor=body["next_cursor"]).json()

    assert [e["action"] for e in body["items"] + rest["items"]] == [
        "user_added",
        "decision",
        "circuit_opened",
        "cancel",
    ]
    assert rest["next_cursor"] is None
    decision = body["items"][1]
    assert (decision["actor"], decision["escalation_id"], decision["version"]) == ("rita", "e-1", 2)
    by_ada = api.get("/api/v1/audit", who="admin", actor="ada").json()["items"]
    assert [e["action"] for e in by_ada] == ["user_added", "cancel"]
    of_workflow = api.get("/api/v1/audit", who="admin", workflow_id="wf-2").json()["items"]
    assert [e["action"] for e in of_workflow] == ["decision"]
    recent = api.get("/api/v1/audit", who="admin", since="35m", until="15m").json()["items"]
    assert [e["action"] for e in recent] == ["decision", "circuit_opened"]


def test_the_audit_log_exports_every_entry_of_the_filter(
    api: Api, entries: list[AuditEntry]
) -> None:
    as_csv = api.get("/api/v1/audit", who="analyst", format="csv", actor="ada", limit=1)
    as_jsonl = api.get("/api/v1/audit", who="analyst", format="jsonl")

    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.headers["content-disposition"].startswith('attachment; filename="waypost-audit-')
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["actor"], r["action"]) for r in rows] == [("ada", "user_added"), ("ada", "cancel")]
    assert json.loads(rows[0]["detail"]) == {"name": "=cmd", "role": "reviewer"}
    assert rows[1]["workflow_id"] == "wf-1"
    assert as_jsonl.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in as_jsonl.text.splitlines()]
    assert [line["action"] for line in lines] == [
        "user_added",
        "decision",
        "circuit_opened",
        "cancel",
    ]
    assert lines[0]["detail"] == {"name": "=cmd", "role": "reviewer"}


@pytest.mark.parametrize("path", ["/api/v1/policy-decisions", "/api/v1/budgets", "/api/v1/audit"])
def test_reviewers_may_not_read_governance_and_strangers_must_log_in(api: Api, path: str) -> None:
    assert_problem(api.get(path, who="reviewer"), 403)
    assert_problem(api.client.get(path), 401)
    assert api.get(path, who="analyst").status_code == 200


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/policy-decisions", {"cursor": "not-a-cursor"}),
        ("/api/v1/policy-decisions", {"since": "yesterday"}),
        ("/api/v1/policy-decisions", {"outcome": "maybe"}),
        ("/api/v1/policy-decisions", {"limit": 0}),
        ("/api/v1/audit", {"until": "soon"}),
        ("/api/v1/audit", {"format": "xml"}),
        ("/api/v1/audit", {"format": "csv", "cursor": "eyJ4IjoxfQ"}),
        ("/api/v1/audit", {"actor": "a\x00b"}),
    ],
)
def test_unreadable_filters_are_422_saying_which(
    api: Api, path: str, params: dict[str, Any]
) -> None:
    body = assert_problem(api.get(path, who="admin", **params), 422)

    assert any(name in body["detail"] for name in (*params, "cursor"))
