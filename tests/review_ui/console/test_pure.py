"""The console's pure parts, without a database: the step graph layout, the inbox query
in URLs, times as reviewers read them, redirects after login, page links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.store.escalations import InboxFilter
from review_ui.console.common import safe_next
from review_ui.console.decisions import parse_output
from review_ui.console.inbox import page_window
from review_ui.console.query import ME, UNASSIGNED, InboxQuery
from review_ui.console.render import duration, time_left, timestamp
from review_ui.console.svg import COLUMN_GAP, MARGIN, NODE_WIDTH, columns, layout

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TICKET = [
    ("triage", ()),
    ("knowledge", ()),
    ("reply", ("triage", "knowledge")),
    ("send", ("reply",)),
]


def test_a_steps_column_is_one_more_than_its_deepest_dependency() -> None:
    assert columns(TICKET) == {"triage": 0, "knowledge": 0, "reply": 1, "send": 2}
    assert columns([("a", ()), ("b", ("a",)), ("c", ("a", "b"))]) == {"a": 0, "b": 1, "c": 2}


def test_unknown_dependencies_and_cycles_do_not_break_the_layout() -> None:
    assert columns([("a", ("ghost",)), ("b", ("b",))]) == {"a": 0, "b": 0}
    found = columns([("a", ("b",)), ("b", ("a",))])
    assert set(found) == {"a", "b"}


def test_layout_places_boxes_by_column_and_playbook_order() -> None:
    graph = layout(TICKET, {"triage": "awaiting_review", "reply": "pending"}, current="triage")

    boxes = {n.name: n for n in graph.nodes}
    assert (boxes["triage"].column, boxes["triage"].row) == (0, 0)
    assert (boxes["knowledge"].column, boxes["knowledge"].row) == (0, 1)
    assert boxes["reply"].x == MARGIN + NODE_WIDTH + COLUMN_GAP
    assert boxes["knowledge"].status == "pending"  # no status given
    assert boxes["triage"].current
    assert not boxes["reply"].current
    assert [(e.source, e.target) for e in graph.edges] == [
        ("triage", "reply"),
        ("knowledge", "reply"),
        ("reply", "send"),
    ]
    assert graph.width == MARGIN * 2 + 3 * NODE_WIDTH + 2 * COLUMN_GAP
    assert all(e.path.startswith("M ") for e in graph.edges)


def test_long_step_names_are_shortened_on_the_box() -> None:
    (node,) = layout([("a_very_long_step_name_indeed", ())], {}).nodes
    assert node.label == "a_very_long_step_na…"
    assert node.name == "a_very_long_step_name_indeed"


def test_an_empty_graph_has_no_size() -> None:
    graph = layout([], {})
    assert (graph.nodes, graph.edges) == ((), ())


def test_the_inbox_query_reads_urls_leniently() -> None:
    query = InboxQuery.parse(
        {"status": "any", "priority": "2", "assignee": ME, "sla": "warning", "page": "3"}
    )
    assert query.filters("rita") == InboxFilter(
        status=None, priority=2, assignee="rita", sla="warning"
    )
    assert query.page == 3
    assert InboxQuery.parse({"assignee": UNASSIGNED}).filters("x").assignee == ""
    assert InboxQuery.parse({"goal_type": "a\x00b", "page": "zero"}) == InboxQuery()
    assert InboxQuery.parse({"page_size": "100000"}).page_size == 50


def test_the_inbox_query_writes_only_what_differs() -> None:
    query = InboxQuery(goal_type="support.ticket", sort="due")
    assert query.url() == "/inbox?goal_type=support.ticket&sort=due"
    assert query.url(page=2) == "/inbox?goal_type=support.ticket&sort=due&page=2"
    assert InboxQuery().url() == "/inbox"
    assert InboxQuery().url("/inbox/updates", extra={"since": "t"}) == "/inbox/updates?since=t"
    assert InboxQuery.parse(query.params()) == query


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=2, minutes=10), "2h 10m left"),
        (timedelta(minutes=5, seconds=30), "5m left"),
        (timedelta(seconds=20), "<1m left"),
        (timedelta(days=1, hours=3), "1d 3h left"),
        (timedelta(hours=3), "3h left"),
        (-timedelta(minutes=5), "overdue by 5m"),
        (timedelta(0), "overdue by <1m"),
    ],
)
def test_time_left(delta: timedelta, text: str) -> None:
    assert time_left(T0 + delta, T0) == text


def test_durations_and_timestamps() -> None:
    assert duration(timedelta(days=2)) == "2d"
    assert timestamp(T0) == "2024-03-01 12:00:00 UTC"
    assert timestamp("2024-03-01T13:00:00+01:00") == "2024-03-01 12:00:00 UTC"
    assert timestamp(None) == "—"
    assert timestamp("not a time") == "not a time"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/escalations/1?x=2", "/escalations/1?x=2"),
        (None, "/inbox"),
        ("", "/inbox"),
        ("//evil.example", "/inbox"),
        ("/\\evil.example", "/inbox"),
        ("https://evil.example", "/inbox"),
        ("/ok\r\nSet-Cookie: x", "/inbox"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_page_window_marks_gaps() -> None:
    assert page_window(1, 1) == [1]
    assert page_window(1, 3) == [1, 2, 3]
    assert page_window(6, 12) == [1, None, 4, 5, 6, 7, 8, None, 12]
    assert page_window(12, 12) == [1, None, 10, 11, 12]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"a": 1}', None),
        ("[1]", "the output must be a JSON object ({...})"),
        ('{"a": NaN}', "not valid JSON: NaN is not valid JSON"),
        (
            "{",
            "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
        ),
    ],
)
def test_parse_output(text: str, error: str | None) -> None:
    value, problem = parse_output(text)
    assert problem == error
    assert (value is not None) == (error is None)
