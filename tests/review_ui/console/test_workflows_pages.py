"""The workflows pages over HTTP (FastAPI's TestClient) on the real PostgreSQL: the list's
filters, counts, keyset pages, live-update fragment and empty states; a workflow's page
with its step graph, attempts, escalations, dead letters and timeline, untrusted text
escaped; the 404 page; who may see what."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from orchestrator.store import dead_letters as dead_letter_index
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.tables import workflows
from tests.review_ui.console.conftest import (
    Escalations,
    assert_safe_page,
    elements,
    htmx,
    section,
)
from tests.review_ui.test_workflows_api import dead_letter_row
from waypost.events import utcnow

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

XSS = "<script>alert(1)</script>"


def add(engine: Engine, workflow_id: str, status: str, minutes_ago: int, **fields: Any) -> None:
    """A workflow row as the orchestrator leaves it."""
    accepted = utcnow() - timedelta(minutes=minutes_ago)
    finished = accepted + timedelta(seconds=75) if status in ("completed", "failed") else None
    row = {
        "id": workflow_id,
        "type": "test.search",
        "status": status,
        "input": {"subject": f"Refund {workflow_id}"},
        "accepted_at": accepted,
        "started_at": accepted + timedelta(seconds=1),
        "finished_at": finished,
        "updated_at": accepted,
        **fields,
    }
    with engine.begin() as conn:
        conn.execute(insert(workflows), [row])


def row_ids(html: str) -> list[str]:
    """The workflow ids the table lists, in order."""
    return [unquote(m) for m in re.findall(r'<td class="wf-id"><a href="/workflows/([^"]+)"', html)]


@pytest.fixture
def listed(engine: Engine) -> Engine:
    add(engine, "w-ok", "completed", 30)
    add(engine, "w-bad", "failed", 20, reason=f"step draft failed: {XSS}")
    add(engine, "w-other", "failed", 10, type="test.other")
    add(
        engine,
        "w-run",
        "running",
        5,
        input={
            "subject": "Parcel",
            "_trigger": {"event_type": "shop.order.created", "source": "shop/orders"},
        },
    )
    return engine


def test_the_list_shows_rows_counts_and_filters(reviewer: TestClient, listed: Engine) -> None:
    response = reviewer.get("/workflows")

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert row_ids(html) == ["w-run", "w-other", "w-bad", "w-ok"]
    counts = section(html, '<ul class="counts wf-counts"')
    for count in ("2 failed", "1 completed", "1 running", "0 cancelled"):
        assert count in counts
    assert 'href="/workflows?status=failed"' in counts
    assert "step draft failed: &lt;script&gt;" in html
    assert XSS not in html
    assert "<code>shop.order.created</code>" in html  # triggered by
    assert "1m 14s" in html  # the duration: from started to finished
    assert [o["value"] for o in elements(html, "option") if o.get("value")][:2] == [
        "test.other",
        "test.search",
    ]


def test_filters_by_status_and_type_with_a_get_form(reviewer: TestClient, listed: Engine) -> None:
    html = reviewer.get("/workflows?status=failed&type=test.search").text

    assert row_ids(html) == ["w-bad"]
    assert elements(html, "input", name="status", value="failed", checked="")
    counts = section(html, '<ul class="counts wf-counts"')
    assert "1 completed" in counts  # the counts keep the type, not the status
    assert row_ids(reviewer.get("/workflows?status=failed&status=running").text) == [
        "w-run",
        "w-other",
        "w-bad",
    ]
    assert row_ids(reviewer.get("/workflows?trigger=shop%2Forders").text) == ["w-run"]
    assert row_ids(reviewer.get("/workflows?text=refund&id=w-o").text) == ["w-other", "w-ok"]
    assert row_ids(reviewer.get("/workflows?text=parcel").text) == ["w-run"]
    assert row_ids(reviewer.get("/workflows?accepted_since=15m").text) == ["w-run", "w-other"]


def test_pages_follow_their_cursors(reviewer: TestClient, listed: Engine) -> None:
    first = reviewer.get("/workflows?limit=3").text
    (next_link,) = [a["href"] for a in elements(first, "a") if a.get("href", "").count("cursor=")]

    second = reviewer.get(str(next_link).replace("&amp;", "&")).text

    assert row_ids(first) == ["w-run", "w-other", "w-bad"]
    assert row_ids(second) == ["w-ok"]
    links = {a.get("href") for a in elements(second, "a")}
    assert "/workflows?limit=3" in links  # the first page
    previous = [h for h in links if h and "cursor=" in h]
    assert len(previous) == 1
    assert row_ids(reviewer.get(str(previous[0])).text) == ["w-run", "w-other", "w-bad"]


def test_htmx_polls_only_the_table_with_the_same_query(
    reviewer: TestClient, listed: Engine
) -> None:
    response = reviewer.get("/workflows?status=failed", headers=htmx("results"))

    html = response.text.strip()
    assert html.startswith('<div id="results"')
    assert "<form" not in html
    assert "<html" not in html
    (results,) = elements(html, "div", id="results")
    assert results["hx-get"] == "/workflows?status=failed"
    assert results["hx-trigger"] == "every 5s"
    assert results["hx-push-url"] == "false"
    assert row_ids(html) == ["w-other", "w-bad"]


def test_empty_states_say_why(reviewer: TestClient, engine: Engine) -> None:
    assert "No workflows yet" in reviewer.get("/workflows").text
    add(engine, "w-1", "completed", 1)

    html = reviewer.get("/workflows?status=cancelled").text

    assert "No workflow matches these filters" in html
    assert row_ids(html) == []


def test_a_time_that_cannot_be_read_is_reported_not_applied(
    reviewer: TestClient, listed: Engine
) -> None:
    html = reviewer.get("/workflows?finished_since=yesterday").text

    assert elements(html, "input", name="finished_since", aria_invalid="true")
    assert "is neither a duration" in html
    assert len(row_ids(html)) == 4


def test_a_broken_cursor_shows_the_first_page(reviewer: TestClient, listed: Engine) -> None:
    html = reviewer.get("/workflows?cursor=broken").text

    assert "That page link no longer works" in html
    assert row_ids(html)[0] == "w-run"


def test_the_list_needs_a_login(make_client: Any) -> None:
    response = make_client().get("/workflows?status=failed")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_a_workflow_page_shows_steps_dag_escalations_and_timeline(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open(
        "Refund please",
        output={"text": XSS},
        reasoning=(f"because {XSS}",),
        goal_input={"subject": "Refund please", "_trigger": {"event_type": "e", "source": XSS}},
    )
    with engine.connect() as conn:
        workflow_id = escalation_rows.workflow_of(conn, escalation_id=escalation_id)
    assert workflow_id is not None

    response = reviewer.get(f"/workflows/{workflow_id}")

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert XSS not in html
    assert elements(html, "svg", **{"class": "dag"})
    assert 'class="dag-node status-awaiting_review' in html
    steps = section(html, '<section class="wf-steps"')
    assert 'id="step-draft"' in steps
    assert 'id="step-check"' in steps
    assert "after draft, check" in steps  # the send step's edges
    # The agent's output and reasoning, escaped, in the untrusted style (htmx off).
    assert elements(steps, "div", **{"class": "untrusted wf-step-data", "hx-disable": ""})
    output = steps[steps.index('<div class="untrusted wf-step-data"') :]
    assert "&#34;text&#34;: &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in output
    assert "<li>because &lt;script&gt;alert(1)&lt;/script&gt;</li>" in output
    escalated = section(html, '<section class="wf-escalations"')
    assert f'href="/escalations/{escalation_id}"' in escalated
    timeline = section(html, '<section class="wf-timeline"')
    for kind in ("accepted", "started", "dispatched", "result", "escalation"):
        assert f"wf-event-{kind}" in timeline
    assert "from &lt;script&gt;" in section(html, '<dd class="trigger"')
    assert 'class="wf-actions"' in html  # _workflow_actions.html's place


def test_dead_letters_are_listed_for_analysts_and_counted_for_reviewers(
    reviewer: TestClient, analyst: TestClient, engine: Engine
) -> None:
    add(engine, "w-dead", "failed", 3)
    with engine.begin() as conn:
        dead_letter_index.index(conn, rows=[dead_letter_row("w-dead")])
        (letter,) = dead_letter_index.search(
            conn, filters=dead_letter_index.DeadLetterFilter(status=None), namespace="t"
        ).rows

    seen = section(analyst.get("/workflows/w-dead").text, '<section class="wf-dead-letters"')
    counted = section(reviewer.get("/workflows/w-dead").text, '<section class="wf-dead-letters"')

    assert f'href="/dlq/{letter.id}"' in seen
    assert "TimeoutError" in seen
    assert "/dlq/" not in counted
    assert "1 of its messages was dead-lettered" in counted


def test_an_unknown_workflow_is_a_404_page(reviewer: TestClient) -> None:
    response = reviewer.get("/workflows/nobody%3Cb%3E")

    assert response.status_code == 404
    assert "There is no workflow &#39;nobody&lt;b&gt;&#39;" in assert_safe_page(response)
