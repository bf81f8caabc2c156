"""The Agents pages over HTTP on the real PostgreSQL: capabilities with their workers,
throughput, error rate, backlog and circuit; the live block htmx polls; and an admin
opening and closing a circuit by hand (confirmed, CSRF-checked, audited) while others
may only look."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import breakers as breaker_rows
from orchestrator.store.capability_load import AttemptCount
from orchestrator.store.tables import audit_events
from orchestrator.workflow.breaker import Circuit, CircuitState
from review_ui.capabilities import outcomes_by_capability
from tests.review_ui.console.conftest import (
    Escalations,
    assert_safe_page,
    csrf_token,
    elements,
    htmx,
    section,
)
from waypost import agent_registry
from waypost.agent_registry import Announcement, Counters

# Many requests each on a fresh app and schema: `make test-slow` (CI runs it).
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def announce(engine: Engine, capability: str, instance: str, version: str = "1.2.0") -> None:
    """A worker announcing ``capability``, as the agent runtime does."""
    with engine.begin() as conn:
        agent_registry.announce(
            conn,
            announcement=Announcement(
                capability=capability,
                instance=instance,
                version=version,
                description="drafts texts",
                input_schema={},
                output_schema={},
                concurrency=4,
                host="box-1",
                pid=4242,
                heartbeat_interval_s=5.0,
            ),
            counters=Counters(completed=12, failed=3, per_min=2.5),
        )


def circuit(engine: Engine, capability: str = "drafter") -> Circuit:
    with engine.connect() as conn:
        return breaker_rows.read(conn, capabilities=[capability]).get(capability) or Circuit(
            capability
        )


def row(html: str, capability: str) -> str:
    return section(html, f'<tr class="capability" data-capability="{capability}">')


def test_every_capability_is_listed_with_workers_throughput_and_backlog(
    reviewer: TestClient, engine: Engine, escalations: Escalations
) -> None:
    announce(engine, "drafter", "drafter-a")
    announce(engine, "drafter", "drafter-b", version="1.3.0")
    escalations.open("Refund please")  # drafter's attempt completed; the step awaits review

    response = reviewer.get("/agents")

    html = assert_safe_page(response)
    assert response.status_code == 200
    drafter = row(html, "drafter")
    assert "2 up" in drafter
    assert "<code>1.2.0</code>, <code>1.3.0</code>" in drafter
    # One completed attempt in 15 minutes; the workers report 2.5/min each.
    assert '0.1 <span class="muted">(5.0)</span>' in drafter
    assert "0 %" in drafter
    assert 'class="circuit circuit-closed"' in drafter
    checker = row(html, "checker")  # known from the playbook only
    assert "0 up" in checker
    assert elements(html, "a", href="/agents/drafter?window=15m")


def test_the_live_block_alone_answers_htmx_polls(reviewer: TestClient) -> None:
    response = reviewer.get("/agents?window=1h", headers=htmx("live"))

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="live"')
    assert "<header" not in response.text
    (live,) = elements(response.text, "div", id="live")
    assert (live["hx-get"], live["hx-trigger"]) == ("/agents?window=1h", "every 5s")


def test_a_capability_page_lists_its_workers(reviewer: TestClient, engine: Engine) -> None:
    announce(engine, "drafter", "drafter-a")

    html = assert_safe_page(reviewer.get("/agents/drafter"))

    worker = section(html, '<tr class="worker worker-up">')
    for shown in ("drafter-a", "1.2.0", "box-1", "4242", "s ago", ">12<", ">3<", "2.5"):
        assert shown in worker
    # A reviewer may look, not act.
    assert not elements(html, "form", action="/agents/drafter/breaker?window=15m")
    assert "Admins can open this circuit" in html


def test_an_admin_opens_a_circuit_after_confirming_and_closes_it_again(
    admin: TestClient, engine: Engine
) -> None:
    token = csrf_token(admin)
    page = admin.get("/agents/drafter").text
    assert elements(page, "form", action="/agents/drafter/breaker?window=15m")
    form = {"csrf_token": token, "action": "open", "reason": "vendor outage", "duration": "10m"}

    asked = admin.post("/agents/drafter/breaker?window=15m", data=form)

    assert asked.status_code == 200
    confirm = section(asked.text, '<div class="confirm"')
    assert "Open the circuit of drafter?" in confirm
    assert "for 10m" in confirm
    assert elements(confirm, "input", name="confirmed", value="yes")
    assert circuit(engine).state is CircuitState.CLOSED  # nothing happened yet

    done = admin.post("/agents/drafter/breaker?window=15m", data={**form, "confirmed": "yes"})

    assert done.status_code == 303
    assert done.headers["location"] == "/agents/drafter?window=15m&notice=opened"
    held = circuit(engine)
    assert (held.state, held.opened_by, held.open_reason) == (
        CircuitState.OPEN,
        "ada",
        "vendor outage",
    )
    assert held.open_until is not None
    assert held.opened_at is not None
    assert held.open_until - held.opened_at == timedelta(minutes=10)
    shown = admin.get(done.headers["location"]).text
    assert "Circuit opened by hand" in shown
    assert "by hand (ada)" in section(shown, "<dd data-circuit>")

    close = {"csrf_token": token, "action": "close", "reason": "fixed", "confirmed": "yes"}
    closed = admin.post("/agents/drafter/breaker", data=close, headers=htmx("breaker"))

    assert closed.status_code == 200
    assert closed.text.lstrip().startswith('<section id="breaker"')
    assert "Circuit closed" in closed.text
    assert 'hx-swap-oob="true"' in closed.text  # the figures follow
    assert circuit(engine).state is CircuitState.CLOSED
    with engine.connect() as conn:
        audited = conn.execute(
            select(audit_events.c.actor, audit_events.c.action, audit_events.c.detail["reason"])
            .where(audit_events.c.action.like("circuit_%"))
            .order_by(audit_events.c.id)
        ).all()
    assert [tuple(a) for a in audited] == [
        ("ada", "circuit_opened_by_hand", "vendor outage"),
        ("ada", "circuit_closed_by_hand", "fixed"),
    ]


def test_refused_breaker_forms_say_why(admin: TestClient, engine: Engine) -> None:
    token = csrf_token(admin)

    def post(capability: str = "drafter", **form: str) -> tuple[int, str]:
        response = admin.post(f"/agents/{capability}/breaker", data={"csrf_token": token, **form})
        return response.status_code, response.text

    status, html = post(action="open", reason="", confirmed="yes")
    assert (status, "Say why" in html) == (422, True)
    status, html = post(action="open", reason="x", duration="forever", confirmed="yes")
    assert status == 422
    assert "is not a duration" in html
    status, html = post(action="open", reason="x", duration="90d", confirmed="yes")
    assert (status, "up to 30d" in html) == (422, True)
    status, html = post(action="close", reason="x", confirmed="yes")
    assert (status, "closed already" in html) == (409, True)
    status, _ = post(capability="nobody", action="open", reason="x", confirmed="yes")
    assert status == 404
    assert circuit(engine).state is CircuitState.CLOSED


def test_only_admins_with_the_csrf_token_change_a_circuit(
    analyst: TestClient, admin: TestClient, engine: Engine
) -> None:
    form = {"action": "open", "reason": "x", "confirmed": "yes"}

    as_analyst = analyst.post(
        "/agents/drafter/breaker", data={**form, "csrf_token": csrf_token(analyst)}
    )
    without_token = admin.post("/agents/drafter/breaker", data=form)

    assert as_analyst.status_code == 403
    assert without_token.status_code == 403
    assert circuit(engine).state is CircuitState.CLOSED


def test_attempts_count_for_the_capability_they_went_to(playbooks: PlaybookRegistry) -> None:
    counted = [
        AttemptCount("test.review", "draft", "drafter", None, "completed", 4),
        AttemptCount("test.review", "draft", "drafter", None, "failed", 1),
        AttemptCount("test.review", "draft", "backup", None, "lease_expired", 2),  # on fallback
        AttemptCount("test.review", "draft", "backup", "backup", "completed", 3),
        AttemptCount("test.review", "draft", "drafter", None, "cancelled", 9),
        AttemptCount("gone.type", "x", "old", None, "failed", 1),
    ]

    totals = outcomes_by_capability(playbooks, counted)

    assert {name: (o.completed, o.errors) for name, o in totals.items()} == {
        "drafter": (4, 3),
        "backup": (3, 0),
        "old": (0, 1),
    }
    assert totals["drafter"].error_rate == pytest.approx(3 / 7)
