"""The inbox: filters, sort, pages, counts, htmx fragments, live updates, bulk actions."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from orchestrator.store import escalations as escalation_rows
from tests.review_ui.console.conftest import (
    Escalations,
    assert_safe_page,
    csrf_token,
    elements,
    htmx,
)
from waypost.events import utcnow

pytestmark = pytest.mark.integration


def listed(html: str) -> list[str]:
    """The escalation ids of the rows, in order."""
    return re.findall(r'class="open" href="/escalations/([^"?]+)', html)


def checkbox(engine: Engine, escalation_id: str) -> str:
    """What a row's checkbox carries: id, version and digest."""
    with engine.connect() as conn:
        row = escalation_rows.rows_by_id(conn, ids=[escalation_id])[escalation_id]
    return f"{row.id}:{row.version}:{row.digest}"


def status_of(engine: Engine, escalation_id: str) -> str:
    with engine.connect() as conn:
        return escalation_rows.rows_by_id(conn, ids=[escalation_id])[escalation_id].status


def test_the_inbox_lists_pending_escalations_most_urgent_first(
    reviewer: TestClient, escalations: Escalations
) -> None:
    ticket = escalations.open("Card charged twice", goal_type="support.ticket", confidence=0.2)
    draft = escalations.aged(5, "Welcome letter")

    response = reviewer.get("/inbox")

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert listed(html) == [draft, ticket]  # priority 1 (test.review) before 2 (triage)
    assert "Card charged twice" in html
    assert "low confidence" in html
    assert "confidence 0.20 is below the step&#39;s threshold 0.50" in html
    assert "the step requires a reviewer&#39;s approval" in html
    assert "55m left" in html or "54m left" in html  # the draft: 1 h SLA, opened 5 min ago
    assert "data-inbox" in html
    assert "2 escalations." in html


def test_rows_show_sla_state_and_the_counts_add_up(
    reviewer: TestClient, escalations: Escalations
) -> None:
    overdue = escalations.aged(70, "Late")  # 1 h SLA: overdue by 10 min
    warning = escalations.aged(50, "Soon")  # warning in the last 15 min
    ok = escalations.aged(1, "Fresh")

    html = reviewer.get("/inbox", params={"sort": "due"}).text

    assert listed(html) == [overdue, warning, ok]
    assert re.search(r'class="sla sla-overdue"[^>]*><time[^>]*>overdue by 10m', html)
    assert re.search(r'class="sla sla-warning"[^>]*><time[^>]*>9m left', html)
    assert re.search(r'class="sla sla-ok"[^>]*><time[^>]*>58m left', html)
    counts = {
        label: int(number)
        for number, label in re.findall(r">(\d+) (open|overdue|warning|ok|unassigned)</a>", html)
    }
    assert counts == {"open": 3, "overdue": 1, "warning": 1, "ok": 1, "unassigned": 3}


def test_filters_narrow_the_list(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    draft = escalations.open("Draft")
    ticket = escalations.open("Ticket", goal_type="support.ticket", confidence=0.1)
    late = escalations.aged(70, "Late")
    reviewer.post("/inbox/bulk", data={"csrf_token": csrf_token(reviewer), "op": f"claim:{draft}"})

    def ids(**params: str) -> set[str]:
        response = reviewer.get("/inbox", params=params)
        assert response.status_code == 200
        return set(listed(response.text))

    assert ids() == {draft, ticket, late}
    assert ids(goal_type="support.ticket") == {ticket}
    assert ids(capability="drafter") == {draft, late}
    assert ids(priority="2") == {ticket}
    assert ids(group="editors") == {draft, late}
    assert ids(sla="overdue") == {late}
    assert ids(assignee="@me") == {draft}
    assert ids(assignee="rita") == {draft}
    assert ids(assignee="@unassigned") == {ticket, late}
    assert ids(status="decided") == set()
    # A GET form sends "" for "any"; nonsense means the default, never an error.
    assert ids(goal_type="", priority="", sla="", assignee="") == {draft, ticket, late}
    assert ids(priority="high", sort="sideways", page="-3", status="x") == {draft, ticket, late}


def test_the_filter_form_works_without_javascript(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalations.open("One")

    html = reviewer.get("/inbox", params={"goal_type": "test.review", "sort": "due"}).text

    (form,) = elements(html, "form", **{"class": "filters"})
    assert form["method"] == "get"
    assert form["action"] == "/inbox"
    assert elements(html, "option", value="test.review", selected="")
    assert elements(html, "option", value="due", selected="")


def test_pages_link_to_each_other(reviewer: TestClient, escalations: Escalations) -> None:
    opened = [escalations.aged(10 - n, f"Escalation {n}") for n in range(5)]

    first = reviewer.get("/inbox", params={"sort": "oldest", "page_size": "2"}).text
    third = reviewer.get("/inbox", params={"sort": "oldest", "page_size": "2", "page": "3"}).text

    assert listed(first) == opened[:2]
    assert listed(third) == opened[4:]
    assert "page 1 of 3" in first
    next_link = elements(first, "a", href="/inbox?sort=oldest&page=2&page_size=2")
    assert next_link
    assert next_link[0]["hx-get"] == next_link[0]["href"]
    assert elements(third, "a", href="/inbox?sort=oldest&page=2&page_size=2")


def test_htmx_gets_only_the_block_it_targets(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalation_id = escalations.open("Partial")

    results = reviewer.get("/inbox", headers=htmx("results"))
    main = reviewer.get("/inbox", headers=htmx("main"))

    assert results.status_code == 200
    assert results.text.lstrip().startswith('<div id="results"')
    assert "<html" not in results.text
    assert 'class="filters"' not in results.text
    assert listed(results.text) == [escalation_id]
    assert main.text.startswith("<title>Inbox · Waypost</title>")
    assert "<html" not in main.text
    assert 'class="filters"' in main.text


def test_the_live_update_counts_new_escalations_without_touching_the_list(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalations.open("Before")
    page = reviewer.get("/inbox").text
    (poller,) = elements(page, "div", id="updates")
    assert poller["hx-trigger"] == "every 10s"
    assert poller["hx-target"] == "this"
    url = poller["hx-get"]
    assert url is not None
    assert url.startswith("/inbox/updates?since=")

    nothing = reviewer.get(url, headers=htmx("updates"))
    escalations.open("After 1")
    escalations.open("After 2")
    escalations.open("Other", goal_type="support.ticket", confidence=0.1)
    two = reviewer.get(url + "&goal_type=test.review", headers=htmx("updates"))

    assert nothing.status_code == 200
    assert nothing.text.strip() == ""
    assert "2 new escalations — show them" in two.text
    assert 'id="results"' not in two.text  # the list the reviewer works in stays as it is
    (link,) = elements(two.text, "a")
    assert link["href"] == link["hx-get"] == "/inbox?goal_type=test.review&sort=newest"
    assert link["hx-target"] == "#results"


def test_an_analyst_reads_the_inbox_but_cannot_act(
    analyst: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Read only")

    html = analyst.get("/inbox").text
    response = analyst.post(
        "/inbox/bulk",
        data={
            "csrf_token": csrf_token(analyst),
            "op": "approve",
            "selected": [checkbox(engine, escalation_id)],
        },
    )

    assert listed(html) == [escalation_id]
    assert not elements(html, "input", name="selected")
    assert "Approve selected" not in html
    assert response.status_code == 403
    assert "analyst role may not do this" in response.text
    assert status_of(engine, escalation_id) == "pending"


def test_bulk_approve_decides_each_selected_row(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    chosen = [escalations.open(f"Bulk {n}") for n in range(3)]
    left = escalations.open("Not chosen")

    response = reviewer.post(
        "/inbox/bulk?sort=due",
        data={
            "csrf_token": csrf_token(reviewer),
            "op": "approve",
            "selected": [checkbox(engine, e) for e in chosen],
        },
    )

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert "Approved 3 of 3" in html
    assert html.count('class="accepted"') == 3
    assert [status_of(engine, e) for e in chosen] == ["decided"] * 3
    assert status_of(engine, left) == "pending"
    assert listed(html) == [left]  # the list under the same filters, without them
    assert elements(html, "option", value="due", selected="")


def test_bulk_shows_a_conflict_per_row(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    fresh = escalations.open("Fresh")
    stale = escalations.open("Stale")
    seen = checkbox(engine, stale)
    reviewer.post(  # someone decides it first
        "/inbox/bulk",
        data={"csrf_token": csrf_token(reviewer), "op": "approve", "selected": [seen]},
    )

    response = reviewer.post(
        "/inbox/bulk",
        data={
            "csrf_token": csrf_token(reviewer),
            "op": "reject",
            "reason": "not our tone",
            "selected": [checkbox(engine, fresh), seen],
        },
        headers=htmx("results"),
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="results"')
    assert "Rejected 1 of 2" in response.text
    assert "409: already decided: approve by rita" in response.text
    assert status_of(engine, fresh) == "decided"


def test_bulk_reject_needs_a_reason(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Needs a reason")

    response = reviewer.post(
        "/inbox/bulk",
        data={
            "csrf_token": csrf_token(reviewer),
            "op": "reject",
            "reason": "  ",
            "selected": [checkbox(engine, escalation_id)],
        },
    )

    assert response.status_code == 422
    assert "A rejection needs a reason; nothing was rejected." in response.text
    assert status_of(engine, escalation_id) == "pending"


def test_bulk_without_a_selection_says_so(reviewer: TestClient) -> None:
    response = reviewer.post(
        "/inbox/bulk", data={"csrf_token": csrf_token(reviewer), "op": "approve"}
    )

    assert response.status_code == 422
    assert "Select at least one escalation first." in response.text


def test_claim_and_unclaim_from_a_row(
    make_client: Callable[..., TestClient], escalations: Escalations, engine: Engine
) -> None:
    rita, rob = make_client("rita"), make_client("rob")
    escalation_id = escalations.open("Mine")

    claimed = rita.post(
        "/inbox/bulk?sort=due",
        data={"csrf_token": csrf_token(rita), "op": f"claim:{escalation_id}"},
    )
    taken = rob.post(
        "/inbox/bulk",
        data={"csrf_token": csrf_token(rob), "op": f"claim:{escalation_id}"},
    )
    rows = rita.get("/inbox").text
    unclaimed = rita.post(
        "/inbox/bulk",
        data={"csrf_token": csrf_token(rita), "op": f"unclaim:{escalation_id}"},
        headers=htmx("results"),
    )

    assert claimed.status_code == 303  # plain form: back to the same list
    assert claimed.headers["location"] == "/inbox?sort=due"
    assert taken.status_code == 409
    assert "claimed by rita" in taken.text
    assert elements(rows, "button", value=f"unclaim:{escalation_id}")
    assert unclaimed.status_code == 200
    assert "Given back to its group" in unclaimed.text
    with engine.connect() as conn:
        row = escalation_rows.rows_by_id(conn, ids=[escalation_id])[escalation_id]
    assert row.assignee is None


def test_the_enter_key_cannot_approve(reviewer: TestClient, escalations: Escalations) -> None:
    escalations.open("Guarded")

    html = reviewer.get("/inbox").text

    # The form's default button (the first) is disabled, so Enter in the reason field
    # submits nothing; the approve button must not come first.
    buttons = elements(html, "button")
    bulk = [b for b in buttons if b.get("class") in ("guard", "approve")]
    assert bulk[0]["class"] == "guard"
    assert "disabled" in bulk[0]


def test_decided_rows_have_no_checkbox(
    reviewer: TestClient, escalations: Escalations, engine: Engine
) -> None:
    escalation_id = escalations.open("Done")
    reviewer.post(
        "/inbox/bulk",
        data={
            "csrf_token": csrf_token(reviewer),
            "op": "approve",
            "selected": [checkbox(engine, escalation_id)],
        },
    )

    html = reviewer.get("/inbox", params={"status": "decided"}).text

    assert listed(html) == [escalation_id]
    assert not elements(html, "input", name="selected")


def test_since_in_the_future_or_garbage_counts_nothing(
    reviewer: TestClient, escalations: Escalations
) -> None:
    escalations.open("Old")
    future = (utcnow() + timedelta(hours=1)).isoformat()

    for since in (future, "yesterday", ""):
        response = reviewer.get("/inbox/updates", params={"since": since}, headers=htmx())
        assert response.status_code == 200
        assert "new escalation" not in response.text


def test_the_update_poll_without_htmx_goes_to_the_inbox(reviewer: TestClient) -> None:
    response = reviewer.get("/inbox/updates", params={"sort": "due", "since": "x"})

    assert response.status_code == 303
    assert response.headers["location"] == "/inbox?sort=due"
