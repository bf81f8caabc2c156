"""The Governance pages over HTTP on the real PostgreSQL: spend today, policy decisions
with the rule that decided (filters, older pages), the audit log with its export links,
and who may see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.console.governance_query import PAGE_SIZE, AuditQuery
from tests.review_ui.console.conftest import assert_safe_page, elements, htmx, section
from waypost.governance import repository
from waypost.governance.engine import utc_day
from waypost.governance.model import Spend
from waypost.governance.tables import policy_decisions

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    """NOW as the test starts (the pages read times relative to the app's clock)."""
    monkeypatch.setitem(globals(), "NOW", datetime.now(UTC))


def decide(engine: Engine, count: int, *, agent: str = "reply", outcome: str = "deny") -> None:
    """``count`` decisions a minute apart, newest first numbered 0."""
    with engine.begin() as conn:
        conn.execute(
            insert(policy_decisions),
            [
                {
                    "at": NOW - timedelta(minutes=n),
                    "agent": agent,
                    "capability": agent,
                    "action": f"act-{n}",
                    "outcome": outcome,
                    "cause": "denied",
                    "policy": "support",
                    "policy_file": "policies/support.yaml",
                    "policy_version": 3,
                    "policy_digest": "abc",
                    "rule": "actions.deny[0]",
                    "reason": f"act-{n} is denied by policy 'support' v3",
                    "context_digest": "d",
                    "detail": {"rule_line": 12},
                }
                for n in range(count)
            ],
        )


def test_the_governance_page_shows_spend_and_decisions_with_their_rule(
    analyst: TestClient, engine: Engine
) -> None:
    decide(engine, 2)
    with engine.begin() as conn:
        repository.add_spend(
            connection=conn,
            agent="reply",
            day=utc_day(NOW),
            workflow_id=None,
            spend=Spend(1234, 0.5),
            now=NOW,
        )

    response = analyst.get("/governance")

    html = assert_safe_page(response)
    budget = section(html, '<tr data-agent="reply">')
    assert "1,234" in budget
    assert "0.5000" in budget
    assert "unknown here" in budget
    assert "WAYPOST_POLICY_DIRS" in html
    newest = section(html, '<tr class="decision"')
    assert "act-0" in newest
    assert "support</strong> v3 <code>actions.deny[0]</code>" in newest
    assert "policies/support.yaml:12" in newest
    assert "act-0 is denied by policy" in newest


def test_decisions_filter_and_continue_on_older_pages(analyst: TestClient, engine: Engine) -> None:
    decide(engine, PAGE_SIZE + 2)
    decide(engine, 1, agent="triage", outcome="allow")

    first = analyst.get("/governance?agent=reply&outcome=deny").text
    (older,) = [
        a
        for a in elements(first, "a")
        if a.get("href", "").startswith("/governance?") and "cursor=" in (a.get("href") or "")
    ]
    second = analyst.get(str(older["href"]), headers=htmx("results"))

    assert first.count('<tr class="decision"') == PAGE_SIZE
    assert second.text.lstrip().startswith('<div id="results"')
    assert second.text.count('<tr class="decision"') == 2
    assert f"act-{PAGE_SIZE + 1}" in second.text
    assert "« Newest" in second.text
    allowed = analyst.get("/governance?outcome=allow").text
    assert allowed.count('<tr class="decision"') == 1
    assert "triage" in section(allowed, '<tr class="decision"')


def test_an_unreadable_filter_says_why(analyst: TestClient) -> None:
    response = analyst.get("/governance?since=yesterday")

    assert response.status_code == 422
    assert "since=&#39;yesterday&#39; is neither a duration" in response.text
    bad_cursor = analyst.get("/governance/audit?cursor=abc")
    assert bad_cursor.status_code == 422
    assert "cursor is not one this API made" in bad_cursor.text


def test_the_audit_log_lists_entries_and_links_their_exports(
    admin: TestClient, engine: Engine
) -> None:
    with engine.begin() as conn:
        audit.record(
            conn,
            entries=[
                AuditEntry("ada", "cancel", workflow_id="wf-1", detail={"reason": "dup"}),
                AuditEntry("waypost:breaker", "circuit_opened", detail={"capability": "echo"}),
            ],
        )

    html = assert_safe_page(admin.get("/governance/audit?actor=ada&since=1h"))

    rows = html.count('<tr class="audit-entry"')
    actions = [
        section(html, f'<tr class="audit-entry" data-entry="{e["data-entry"]}"')
        for e in elements(html, "tr", data_entry="")
    ]
    assert [("<code>cancel</code>" in a, "<code>login</code>" in a) for a in actions] == [
        (True, False),
        (False, True),  # ada's login, audited too
    ]
    assert "dup" in actions[0]
    assert "circuit_opened" not in html
    (csv_link,) = elements(html, "a", data_export="csv")
    assert csv_link["href"] == "/api/v1/audit?since=1h&actor=ada&format=csv"
    exported = admin.get(str(csv_link["href"]))
    assert exported.status_code == 200
    assert exported.text.splitlines()[0] == (
        "id,at,actor,action,workflow_id,escalation_id,version,digest,detail"
    )
    assert len(exported.text.splitlines()) == 1 + rows


@pytest.mark.parametrize("path", ["/governance", "/governance/audit"])
def test_reviewers_may_not_see_governance(reviewer: TestClient, path: str) -> None:
    assert reviewer.get(path).status_code == 403


def test_export_links_leave_the_page_cursor_out() -> None:
    query = AuditQuery(actor="ada", cursor="abc")

    assert query.export_url("jsonl") == "/api/v1/audit?actor=ada&format=jsonl"
    assert query.url("/governance/audit") == "/governance/audit?cursor=abc&actor=ada"
