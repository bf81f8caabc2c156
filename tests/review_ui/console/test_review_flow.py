"""The review flow over HTTP: an escalation page knows its place in the inbox list it was
opened from (previous, next, the way back with the cursor), a decision moves on to the
next escalation of that list, a step's summary line shows in the inbox row, and the
output's JSON is on the page once, next to the goal input."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import escalations as escalation_rows
from tests.review_ui.console.conftest import (
    PLAYBOOKS,
    Escalations,
    assert_safe_page,
    csrf_token,
    elements,
    htmx,
    section,
)

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUMMARIZED = """\
type: test.summary
steps:
  - name: triage
    capability: triager
    requires_approval: true
    input: {subject: $goal.subject}
    summary: "{output.category}: {output.text} for {input.subject} ({output.missing})"
"""


@pytest.fixture
def playbooks(tmp_path: Path) -> PlaybookRegistry:
    """The console tests' playbooks and one whose step writes a summary line."""
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "summary.yaml").write_text(SUMMARIZED)
    return PlaybookRegistry.load([PLAYBOOKS, directory])


def flow_links(html: str) -> dict[str, str | None]:
    """The escalation page's links of the review flow, by id (None: not there)."""
    links = {}
    for name in ("back-to-inbox", "previous-escalation", "next-escalation"):
        found = elements(html, "a", id=name)
        assert len(found) <= 1
        if found:
            assert found[0]["href"] == found[0]["hx-get"]
        links[name] = found[0]["href"] if found else None
    return links


def position(html: str) -> str:
    match = re.search(r'<span class="position">([^<]*)</span>', html)
    assert match, "no position on the page"
    return match[1]


def decide(
    client: TestClient,
    engine: Engine,
    escalation_id: str,
    action: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Response:
    """Post a decision form as the page would, from the inbox list ``query``."""
    with engine.connect() as conn:
        row = escalation_rows.rows_by_id(conn, ids=[escalation_id])[escalation_id]
    data = {
        "csrf_token": csrf_token(client),
        "action": action,
        "version": str(row.version),
        "digest": row.digest,
        **fields,
    }
    url = f"/escalations/{escalation_id}/decision" + (f"?from={quote(query)}" if query else "")
    return client.post(url, data=data, headers=headers)


def test_an_escalation_knows_its_place_in_the_inbox_list_it_came_from(
    reviewer: TestClient, escalations: Escalations
) -> None:
    first = escalations.aged(30, "First")
    second = escalations.aged(20, "Second")
    third = escalations.aged(10, "Third")

    # Opened straight away, the list is the default inbox: most urgent, then oldest first.
    plain = assert_safe_page(reviewer.get(f"/escalations/{second}"))
    assert position(plain) == "2 of 3"
    assert flow_links(plain) == {
        "back-to-inbox": f"/inbox?cursor={second}",
        "previous-escalation": f"/escalations/{first}",
        "next-escalation": f"/escalations/{third}",
    }
    top = reviewer.get(f"/escalations/{first}").text
    assert flow_links(top)["previous-escalation"] is None
    assert flow_links(reviewer.get(f"/escalations/{third}").text)["next-escalation"] is None

    # From the newest-first inbox, the rows link to escalations that remember it.
    inbox = reviewer.get("/inbox", params={"sort": "newest"}).text
    opened = [str(a["href"]) for a in elements(inbox, "a", **{"class": "open"})]
    assert opened == [f"/escalations/{e}?from=sort%3Dnewest" for e in (third, second, first)]
    newest = assert_safe_page(reviewer.get(opened[1]))
    assert position(newest) == "2 of 3"
    assert flow_links(newest) == {
        "back-to-inbox": f"/inbox?sort=newest&cursor={second}",
        "previous-escalation": f"/escalations/{third}?from=sort%3Dnewest",
        "next-escalation": f"/escalations/{first}?from=sort%3Dnewest",
    }
    # Its forms keep the list too, so a decision knows where to go next.
    (approve,) = elements(newest, "form", id="approve-form")
    assert approve["action"] == approve["hx-post"]
    assert approve["action"] == f"/escalations/{second}/decision?from=sort%3Dnewest"

    # Back to the inbox: on the page the escalation is on, the cursor on its row.
    paged = reviewer.get(f"/escalations/{third}", params={"from": "page_size=2"}).text
    back = flow_links(paged)["back-to-inbox"]
    assert back == f"/inbox?page=2&page_size=2&cursor={third}"
    assert back is not None
    rows = elements(reviewer.get(back).text, "tr", data_row="")
    assert [(r["data-id"], r.get("aria-current")) for r in rows] == [(third, "true")]


def test_a_decision_moves_on_to_the_next_escalation_of_the_list(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    first = escalations.aged(30, "First")
    second = escalations.aged(20, "Second")
    third = escalations.aged(10, "Third")
    # A support ticket's triage is less urgent than test.review's draft: last in the inbox.
    other = escalations.aged(40, "Other type", goal_type="support.ticket", confidence=0.1)

    approved = decide(reviewer, engine, first, "approve")
    assert approved.status_code == 303
    location = approved.headers["location"]
    assert location == f"/escalations/{second}?notice=approve&decided={first}"
    page = reviewer.get(location).text
    notice = section(page, '<p class="notice"')
    assert "Approved: the workflow resumes" in notice
    assert "That was “First”; this is the next one" in notice
    assert position(page) == "1 of 3"

    # Within a filtered list the next one is the next of that list.
    query = "goal_type=test.review"
    rejected = decide(reviewer, engine, second, "reject", query=query, reason="Wrong tone")
    assert rejected.headers["location"] == (
        f"/escalations/{third}?from=goal_type%3Dtest.review&notice=reject&decided={second}"
    )

    # htmx gets the next page itself, swapped into the main area under its own URL.
    swapped = decide(reviewer, engine, third, "approve", headers=htmx("escalation"))
    assert swapped.status_code == 200
    assert swapped.headers["hx-retarget"] == "#main"
    assert swapped.headers["hx-reswap"] == "innerHTML show:window:top"
    assert swapped.headers["hx-push-url"] == f"/escalations/{other}"
    assert swapped.text.startswith("<title>Other type · Waypost</title>")
    assert '<article id="escalation"' in swapped.text
    assert "That was “Third”" in swapped.text

    # After the last one the page stays, and says so.
    query = "goal_type=support.ticket"
    last = decide(reviewer, engine, other, "approve", query=query)
    assert last.headers["location"] == (
        f"/escalations/{other}?from=goal_type%3Dsupport.ticket&notice=approve"
    )
    final = reviewer.get(last.headers["location"]).text
    assert "Nothing else waits in your inbox list." in section(final, '<p class="notice"')
    assert position(final) == "0 escalations in your inbox list"
    with engine.connect() as conn:
        decided = escalation_rows.rows_by_id(conn, ids=[first, second, third, other])
    assert {e: row.status for e, row in decided.items()} == dict.fromkeys(
        (first, second, third, other), "decided"
    )


def test_claiming_stays_on_the_page_and_keeps_the_list(
    reviewer: TestClient, escalations: Escalations
) -> None:
    mine = escalations.aged(30, "Mine")
    escalations.aged(20, "Next")

    claimed = reviewer.post(
        f"/escalations/{mine}/claim?from=sort%3Ddue", data={"csrf_token": csrf_token(reviewer)}
    )

    assert claimed.status_code == 303
    assert claimed.headers["location"] == f"/escalations/{mine}?from=sort%3Ddue&notice=claim"


def test_a_step_summary_shows_in_the_inbox_row_and_on_the_page(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    summarized = escalations.open(
        "Order 42",
        goal_type="test.summary",
        output={"category": "billing", "text": "<b>refund</b> it"},
    )
    plain = escalations.open("Plain")

    inbox = assert_safe_page(reviewer.get("/inbox"))
    line = "billing: &lt;b&gt;refund&lt;/b&gt; it for Order 42 (—)"
    assert f'<div class="step-summary">{line}</div>' in inbox
    assert inbox.count('class="step-summary"') == 1  # the plain one has none
    page = assert_safe_page(reviewer.get(f"/escalations/{summarized}"))
    assert f'<p class="step-summary">{line}</p>' in page
    assert 'class="step-summary"' not in reviewer.get(f"/escalations/{plain}").text
    # Rendered as the escalation opened, it is part of what the reviewer is shown.
    with engine.connect() as conn:
        found = escalation_rows.get(conn, escalation_id=summarized)
    assert found is not None
    assert found[1].content["summary"] == "billing: <b>refund</b> it for Order 42 (—)"


def test_the_output_json_is_shown_once_next_to_the_goal_input(
    reviewer: TestClient, analyst: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Once", output={"text": "Only once, please"})
    output_json = "&#34;text&#34;: &#34;Only once, please&#34;"

    html = assert_safe_page(reviewer.get(f"/escalations/{escalation_id}"))
    shown = section(html, '<section class="untrusted" hx-disable')
    assert html.count(output_json) == 1
    textarea = section(shown, '<textarea id="edit-output"')
    assert output_json in textarea
    assert 'form="edit-form"' in textarea  # sent with the edit form, wherever it stands
    goal = section(shown, '<div class="goal-input"')
    assert "&#34;subject&#34;: &#34;Once&#34;" in goal
    assert html.count("&#34;subject&#34;: &#34;Once&#34;") == 2  # the goal, the task input

    # A reader who cannot decide reads the output as text; so does everyone once decided.
    read = analyst.get(f"/escalations/{escalation_id}").text
    assert read.count(output_json) == 1
    assert '<pre class="json">' in section(read, '<div class="proposal"')
    assert output_json in section(read, '<div class="proposal"')
    assert not elements(read, "textarea", id="edit-output")
    decide(reviewer, engine, escalation_id, "approve")
    decided = reviewer.get(f"/escalations/{escalation_id}").text
    assert decided.count(output_json) == 1
    assert not elements(decided, "textarea", id="edit-output")


def test_odd_flow_parameters_mean_the_default_inbox(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = escalations.open("Odd")

    for params in (
        {"from": "status=bogus&sort=sideways&page=-1"},
        {"from": "x" * 5000},
        {"from": "goal_type=a\x00b"},
        {"decided": "no-such-escalation"},
        {"decided": "y" * 500},
    ):
        response = reviewer.get(f"/escalations/{escalation_id}", params=params)
        assert response.status_code == 200, params
        assert position(response.text) == "1 of 1"
        assert flow_links(response.text)["back-to-inbox"] == f"/inbox?cursor={escalation_id}"
        assert "That was" not in response.text
    inbox = reviewer.get("/inbox", params={"cursor": "z" * 500})
    assert inbox.status_code == 200
    assert 'aria-current="true"' not in inbox.text
