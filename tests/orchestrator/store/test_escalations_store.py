"""The review inbox on the real PostgreSQL: filters, sort orders, pages, SLA counts at a
controlled ``now``, facets, one escalation, and similar past decisions (pgvector)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from orchestrator.review import Reviewer
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.escalations import InboxFilter, InboxPage
from orchestrator.workflow.state import EscalationState, EscalationStatus
from tests.orchestrator.test_reviews import T0, ReviewHarness, write_playbooks

pytestmark = pytest.mark.integration

# A second reviewed playbook: another goal type, capability, group and priority.
LEGAL = """\
type: test.legal
steps:
  - name: check
    capability: lawyer
    requires_approval: true
    review:
      group: legal
      priority: 5
      sla: 2h
      warn_before: 30m
"""
CAPABILITIES = ("echo", "triage", "knowledge", "reply", "lawyer")


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


@pytest.fixture
def harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    directory = write_playbooks(tmp_path / "playbooks")
    (directory / "legal.yaml").write_text(LEGAL)
    return ReviewHarness(engine, namespace, directory, CAPABILITIES)


@dataclass
class Inbox:
    """Escalations in every state, opened one second apart from T0.

    a  test.reviewed  echo    editors  p2  opened T0    due T0+60   warn T0+50
    b  support.ticket triage  triage   p2  opened T0+1  due +1h     warn 15 min before
    c  test.legal     lawyer  legal    p5  opened T0+2  due +2h     warn 30 min before
    d  test.reviewed  echo    editors  p2  opened T0+3  due T0+63   warn T0+53; ada claimed it
    e  test.reviewed, decided;  f  test.reviewed, resolved
    """

    a: EscalationState
    b: EscalationState
    c: EscalationState
    d: EscalationState
    e: EscalationState
    f: EscalationState


@pytest.fixture
def inbox(harness: ReviewHarness) -> Inbox:
    a = harness.escalate("wf-a", goal_input={"text": "Alpha request"})
    harness.now = seconds(1)
    b = harness.escalate(
        "wf-b",
        goal_type="support.ticket",
        step="triage",
        goal_input={"subject": "Bravo ticket", "body": "It broke."},
        output={"category": "billing", "urgency": "low"},
        confidence=0.2,
    )
    harness.now = seconds(2)
    c = harness.escalate(
        "wf-c", goal_type="test.legal", step="check", goal_input={"name": "Charlie"}
    )
    harness.now = seconds(3)
    d = harness.escalate("wf-d", goal_input={"text": "Delta request"})
    with harness.engine.begin() as conn:
        harness.reviews.claim(conn, escalation_id=d.id, reviewer=Reviewer("ada"), now=harness.now)
    harness.now = seconds(4)
    e = harness.escalate("wf-e", goal_input={"text": "Echo request"})
    harness.now = seconds(5)
    f = harness.escalate("wf-f", goal_input={"text": "Foxtrot request"})
    harness.decide(harness.request(f, "approve"))
    harness.deliver_decisions()  # f is resolved
    harness.decide(harness.request(e, "reject", reason="no"))  # e is decided, not applied
    return Inbox(a, b, c, d, e, f)


def page(
    harness: ReviewHarness,
    now: datetime | None = None,
    sort: str = "priority",
    number: int = 1,
    size: int = 50,
    **filters: object,
) -> InboxPage:
    with harness.engine.connect() as conn:
        return escalation_rows.inbox(
            conn,
            filters=InboxFilter(**filters),  # type: ignore[arg-type]
            now=now or seconds(61),
            sort=sort,  # type: ignore[arg-type]
            page=number,
            page_size=size,
        )


def ids(found: InboxPage) -> list[str]:
    return [row.id for row in found.rows]


# --- filters --------------------------------------------------------------------------------


def test_the_inbox_shows_pending_escalations_by_default(
    harness: ReviewHarness, inbox: Inbox
) -> None:
    assert set(ids(page(harness))) == {inbox.a.id, inbox.b.id, inbox.c.id, inbox.d.id}
    assert ids(page(harness, status="decided")) == [inbox.e.id]
    assert ids(page(harness, status="resolved")) == [inbox.f.id]
    assert page(harness, status=None).total == 6


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"goal_type": "support.ticket"}, "b"),
        ({"goal_type": "test.reviewed"}, "ad"),
        ({"capability": "lawyer"}, "c"),
        ({"priority": 2}, "abd"),
        ({"priority": 5}, "c"),
        ({"priority": 1}, ""),
        ({"assignee": "ada"}, "d"),
        ({"assignee": ""}, "abc"),
        ({"group": "legal"}, "c"),
        ({"group": "editors"}, "ad"),
        ({"sla": "overdue"}, "a"),
        ({"sla": "warning"}, "d"),
        ({"sla": "ok"}, "bc"),
        ({"goal_type": "test.reviewed", "sla": "warning"}, "d"),
        ({"goal_type": "test.reviewed", "status": None}, "adef"),
        ({"goal_type": "no.such.type"}, ""),
        ({"opened_after": T0 + timedelta(seconds=1)}, "cd"),  # strictly after
        ({"opened_after": T0 - timedelta(seconds=1)}, "abcd"),
    ],
)
def test_each_filter_narrows_the_inbox(
    harness: ReviewHarness, inbox: Inbox, filters: dict[str, object], expected: str
) -> None:
    found = page(harness, **filters)

    assert sorted(ids(found)) == sorted(getattr(inbox, name).id for name in expected)
    assert found.total == len(expected)


def test_the_sla_state_follows_the_clock(harness: ReviewHarness, inbox: Inbox) -> None:
    assert ids(page(harness, now=seconds(49), sla="ok", goal_type="test.reviewed")) == [
        inbox.a.id,
        inbox.d.id,
    ]
    assert ids(page(harness, now=seconds(50), sla="warning")) == [inbox.a.id]
    assert ids(page(harness, now=seconds(60), sla="overdue")) == [inbox.a.id]
    assert sorted(ids(page(harness, now=seconds(63), sla="overdue"))) == sorted(
        [inbox.a.id, inbox.d.id]
    )
    row = page(harness, now=seconds(61), group="editors").rows
    assert {r.id: r.sla(seconds(61)) for r in row} == {inbox.a.id: "overdue", inbox.d.id: "warning"}


# --- sort orders and pages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("priority", "abdc"),  # most urgent first, then oldest
        ("due", "adbc"),
        ("newest", "dcba"),
        ("oldest", "abcd"),
    ],
)
def test_sort_orders(harness: ReviewHarness, inbox: Inbox, sort: str, expected: str) -> None:
    assert ids(page(harness, sort=sort)) == [getattr(inbox, name).id for name in expected]


def test_pages_split_the_rows_and_count_them_all(harness: ReviewHarness, inbox: Inbox) -> None:
    first = page(harness, sort="oldest", number=1, size=3)
    second = page(harness, sort="oldest", number=2, size=3)
    beyond = page(harness, sort="oldest", number=3, size=3)

    assert ids(first) == [inbox.a.id, inbox.b.id, inbox.c.id]
    assert ids(second) == [inbox.d.id]
    assert ids(beyond) == []
    assert (first.total, second.total, beyond.total) == (4, 4, 4)
    assert (first.pages, first.page, second.page, first.page_size) == (2, 1, 2, 3)
    assert page(harness, goal_type="none").pages == 1  # an empty inbox is one empty page


def test_rows_summarise_the_goal_and_carry_the_confidence(
    harness: ReviewHarness, inbox: Inbox
) -> None:
    rows = {r.id: r for r in page(harness).rows}

    a, b, c = rows[inbox.a.id], rows[inbox.b.id], rows[inbox.c.id]
    assert (a.summary, a.goal_type, a.step, a.capability, a.kind) == (
        "Alpha request",
        "test.reviewed",
        "draft",
        "echo",
        "approval",
    )
    assert (a.version, a.digest, a.group, a.priority) == (1, inbox.a.digest, "editors", 2)
    assert (a.opened_at, a.due_at, a.warn_at) == (T0, seconds(60), seconds(50))
    assert a.confidence == 0.9
    assert (b.summary, b.kind, b.confidence) == ("Bravo ticket", "low_confidence", 0.2)
    assert c.summary == "Charlie"
    assert rows[inbox.d.id].assignee == "ada"


# --- counts and facets ----------------------------------------------------------------------


def test_counts_by_sla_state_at_a_controlled_now(harness: ReviewHarness, inbox: Inbox) -> None:
    with harness.engine.connect() as conn:
        early = escalation_rows.counts(conn, filters=InboxFilter(), now=T0)
        later = escalation_rows.counts(conn, filters=InboxFilter(), now=seconds(61))
        reviewed = escalation_rows.counts(
            conn, filters=InboxFilter(goal_type="test.reviewed"), now=seconds(61)
        )
        # The status filter does not apply: counts are always of open escalations.
        decided = escalation_rows.counts(
            conn, filters=InboxFilter(status="decided"), now=seconds(61)
        )
        much_later = escalation_rows.counts(conn, filters=InboxFilter(), now=seconds(10_000))

    assert early == {"open": 4, "overdue": 0, "warning": 0, "ok": 4, "unassigned": 3}
    assert later == {"open": 4, "overdue": 1, "warning": 1, "ok": 2, "unassigned": 3}
    assert reviewed == {"open": 2, "overdue": 1, "warning": 1, "ok": 0, "unassigned": 1}
    assert decided == later
    assert much_later == {"open": 4, "overdue": 4, "warning": 0, "ok": 0, "unassigned": 3}


def test_facets_list_every_value_once_in_order(harness: ReviewHarness, inbox: Inbox) -> None:
    with harness.engine.connect() as conn:
        found = escalation_rows.facets(conn)

    assert found == {
        "goal_type": ["support.ticket", "test.legal", "test.reviewed"],
        "capability": ["echo", "lawyer", "triage"],
        "group": ["editors", "legal", "triage"],
        "assignee": ["ada"],
    }


# --- one escalation ---------------------------------------------------------------------------


def test_get_returns_the_escalation_with_its_workflow(harness: ReviewHarness, inbox: Inbox) -> None:
    with harness.engine.connect() as conn:
        found = escalation_rows.get(conn, escalation_id=inbox.e.id)
        missing = escalation_rows.get(conn, escalation_id="no-such-id")
        nul = escalation_rows.get(conn, escalation_id="bad\x00id")

    assert found is not None
    workflow, escalation = found
    assert workflow.id == "wf-e"
    assert escalation.status is EscalationStatus.DECIDED
    assert escalation.decision is not None
    assert (escalation.decision.action, escalation.decision.reason) == ("reject", "no")
    assert escalation.content == inbox.e.content
    assert (missing, nul) == (None, None)


def test_rows_by_id(harness: ReviewHarness, inbox: Inbox) -> None:
    with harness.engine.connect() as conn:
        found = escalation_rows.rows_by_id(conn, ids=[inbox.a.id, inbox.f.id, "nope"])

    assert set(found) == {inbox.a.id, inbox.f.id}
    assert found[inbox.f.id].status == "resolved"


# --- similar past decisions -----------------------------------------------------------------


def test_similar_ranks_the_nearest_decided_escalation_of_the_same_step_first(
    harness: ReviewHarness,
) -> None:
    def escalate(goal_id: str, text: str, output: str) -> EscalationState:
        harness.now += timedelta(seconds=1)
        return harness.escalate(goal_id, goal_input={"text": text}, output={"text": output})

    near = escalate(
        "near", "refund for a broken blender order", "We will refund the broken blender."
    )
    far = escalate(
        "far", "password reset email never arrives", "Check the spam folder for the email."
    )
    undecided = escalate(
        "undecided", "refund for a broken blender order", "We will refund the broken blender."
    )
    other_step = harness.escalate(
        "ticket",
        goal_type="support.ticket",
        step="triage",
        goal_input={"subject": "refund for a broken blender order", "body": "broken blender"},
        output={"category": "refund_request", "urgency": "low"},
        confidence=0.1,
    )
    harness.decide(harness.request(near, "approve"), "ada")
    harness.decide(harness.request(far, "reject", reason="wrong article"), "bob")
    harness.decide(harness.request(other_step, "approve"), "ada")
    harness.deliver_decisions()  # near: resolved; far and other_step too
    target = escalate(
        "target", "refund for my broken blender order please", "We will refund the blender."
    )

    with harness.engine.connect() as conn:
        found = escalation_rows.similar(conn, escalation_id=target.id)
        limited = escalation_rows.similar(conn, escalation_id=target.id, limit=1)
        unknown = escalation_rows.similar(conn, escalation_id="no-such-id")

    assert [s.id for s in found] == [near.id, far.id]
    assert undecided.id not in [s.id for s in found]
    assert [s.id for s in limited] == [near.id]
    assert unknown == []
    first, second = found
    assert first.similarity > second.similarity
    assert 0 < first.similarity <= 1
    assert (first.workflow_id, first.step, first.summary) == (
        "near",
        "draft",
        "refund for a broken blender order",
    )
    assert (first.action, first.reviewer, first.reason) == ("approve", "ada", None)
    assert (second.action, second.reviewer, second.reason) == ("reject", "bob", "wrong article")
    assert datetime.fromisoformat(first.decided_at) == seconds(3)  # when ada decided
