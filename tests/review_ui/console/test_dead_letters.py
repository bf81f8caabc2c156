"""The dead-letter workbench over HTTP on the real PostgreSQL: the list with its filters,
facets and histogram, a dead letter's page (hostile bytes stay text), dry runs with a
diff and the schema check, replays (each dead letter sent once, into the outbox: these
apps have no publisher), resolve and discard with a reason, and who may do any of it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any, cast

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from orchestrator.dead_letters.edits import Edit
from orchestrator.dead_letters.records import REPLAY_COUNT, REPLAY_OF, REPLAY_REQUEST, index_row
from orchestrator.store import audit
from orchestrator.store import dead_letters as index
from orchestrator.store.dead_letters import DeadLetter
from orchestrator.store.tables import dead_letters, outbox
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from review_ui.console.dead_letter_forms import DlqQuery, Refused, parse_edit, parse_rate
from review_ui.console.dead_letter_views import DiffLine, histogram, line_diff
from review_ui.deps import AppState
from tests.review_ui.console.conftest import (
    assert_safe_page,
    csrf_token,
    elements,
    htmx,
    section,
)
from waypost.bus.dead_letters import Failure, dead_letter
from waypost.bus.records import ReceivedRecord, headers_from_json
from waypost.events import Event, GoalSubmitted, default_codec, utcnow
from waypost.topics import Topics

pytestmark = pytest.mark.integration
HOSTILE = '<script>alert("dlq")</script><img src=x onerror=alert(1)>'
BINARY = b"\xff\xfe\x00 not utf-8"


# --- dead letters, made as the consumer loop makes them and indexed as the indexer does ---


@dataclass
class DeadLetters:
    """Puts dead letters into this test's index; each call returns the new row's id."""

    engine: Engine
    topics: Topics
    offsets: count[int] = field(default_factory=count)

    def add(
        self,
        *,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes], ...] = (),
        error: Exception | None = None,
        at: datetime | None = None,
    ) -> int:
        """A dead letter of a record of ``topic`` that failed with ``error``."""
        at = at or utcnow()
        offset = next(self.offsets)
        source = ReceivedRecord(topic, 0, offset, key, value, headers)
        failure = Failure(error or ValueError("it broke"), 3, at - timedelta(seconds=5), at)
        letter = dead_letter(source, failure, group="g.test")
        on_dlq = ReceivedRecord(
            letter.topic,
            0,
            offset,
            letter.key,
            letter.value,
            letter.headers,
            int(at.timestamp() * 1000),
        )
        row = index_row(on_dlq, self.topics)
        with self.engine.begin() as conn:
            assert index.index(conn, rows=[row]) == 1
            found = conn.execute(
                select(dead_letters.c.id).where(dead_letters.c.fingerprint == row["fingerprint"])
            ).scalar_one()
        return int(found)

    def goal(
        self, goal_input: Any, *, error: Exception | None = None, at: datetime | None = None
    ) -> int:
        """A goal.submitted record (type test.review) that failed."""
        event = Event(GoalSubmitted(type="test.review", input=goal_input), source="test")
        encoded = default_codec().encode(event)
        return self.add(
            topic=self.topics.goals,
            key=encoded.key,
            value=encoded.value,
            headers=encoded.headers,
            error=error,
            at=at,
        )

    def task(self, capability: str, text: str, *, error: Exception | None = None) -> int:
        """A plain JSON record on a capability's task topic that failed."""
        value = orjson.dumps({"text": text})
        return self.add(topic=self.topics.tasks(capability), key=b"k", value=value, error=error)

    def get(self, dead_letter_id: int) -> DeadLetter:
        with self.engine.connect() as conn:
            found = index.get(conn, dead_letter_id=dead_letter_id)
        assert found is not None
        return found


@pytest.fixture
def letters(engine: Engine, namespace: str) -> DeadLetters:
    return DeadLetters(engine, Topics(namespace))


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(outbox).order_by(outbox.c.id)).mappings()]


def state_of(client: TestClient) -> AppState:
    state: AppState = cast(FastAPI, client.app).state.waypost
    return state


def listed(html: str) -> list[int]:
    """The dead letter ids of the list's rows, in order."""
    return [int(i) for i in re.findall(r'class="open" href="/dlq/(\d+)"', html)]


def request_id(html: str) -> str:
    """The request id the page's replay form carries."""
    (found,) = {e["value"] for e in elements(html, "input", name="request_id")}
    assert found
    return found


def form(client: TestClient, html: str, **values: Any) -> dict[str, Any]:
    """What a replay or close form of ``html`` sends, with ``values``."""
    return {"csrf_token": csrf_token(client), "request_id": request_id(html), **values}


# --- the pure parts ---------------------------------------------------------------------------


def test_a_line_diff_marks_added_and_removed_lines() -> None:
    before = json.dumps({"a": 1, "b": 2}, indent=2)
    after = json.dumps({"a": 1, "b": 3}, indent=2)

    diff = line_diff(before, after)

    assert [line.kind for line in diff] == ["hunk", "same", "same", "remove", "add", "same"]
    assert DiffLine("remove", '-  "b": 2') in diff
    assert DiffLine("add", '+  "b": 3') in diff
    assert line_diff(before, before) == []


def test_the_histogram_scales_bars_to_the_busiest_hour() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)

    drawn = histogram([0, 1, 4] + [0] * 21, start, start + timedelta(hours=24))

    assert [bar.height for bar in drawn.bars[:3]] == [0, 15, 60]
    assert (drawn.total, drawn.peak) == (5, 4)
    assert drawn.bars[2].start == start + timedelta(hours=2)
    assert [text for _, text in drawn.labels] == ["00:00", "06:00", "12:00", "18:00"]


def test_edits_and_rates_are_read_strictly() -> None:
    assert parse_edit("replace", "  ") is None
    assert parse_edit("merge_patch", '{"input": {"subject": "x"}}') == Edit(
        "merge_patch", {"input": {"subject": "x"}}
    )
    assert parse_edit("replace", '{"b": 1, "a": 2}', unchanged={"a": 2, "b": 1}) is None
    assert parse_edit("replace", '{"a": true}', unchanged={"a": 1}) == Edit("replace", {"a": True})
    for kind, text, message in [
        ("replace", "{", "not valid JSON"),
        ("replace", "NaN", "NaN is not valid JSON"),
        ("merge_patch", "[1]", "A merge patch is a JSON object"),
        ("rewrite", "{}", "Choose how to apply the edit"),
        ("replace", '{"a": "\\u0000"}', "NUL"),
    ]:
        with pytest.raises(Refused, match=message):
            parse_edit(kind, text)
    assert (parse_rate("", 200.0), parse_rate("50", 200.0), parse_rate("unlimited", 1)) == (
        200.0,
        50.0,
        None,
    )
    for bad in ("0", "-1", "fast", "nan"):
        with pytest.raises(Refused, match="messages per second"):
            parse_rate(bad, 200.0)


def test_the_list_query_round_trips_through_urls_and_filter_expressions() -> None:
    query = DlqQuery.parse(
        {"status": "any", "topic": "t.goals", "text": "connection refused", "page": "2"}
    )

    assert query.url() == "/dlq?status=any&topic=t.goals&text=connection+refused&page=2"
    assert query.expression() == "status=any topic=t.goals 'text=connection refused'"
    assert DlqQuery.parse({"status": "bogus", "page": "-3"}) == DlqQuery()


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_pending_dead_letters_with_facets_and_a_histogram(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    first = letters.goal({"subjekt": "typo"}, error=ValueError("subject is required"))
    second = letters.goal({"subject": 3}, error=ValueError("3 is not a string"))
    task = letters.task("echo", "hello", error=KeyError("missing"))
    closed = letters.goal({"subject": "done"})
    state_of(analyst).replays.replayer.close(
        index.DeadLetterFilter(status=None, ids=(closed,)),
        status="resolved",
        actor="ann",
        reason="fixed by hand",
    )

    response = analyst.get("/dlq")

    assert response.status_code == 200
    html = assert_safe_page(response)
    assert listed(html) == [task, second, first]  # newest first
    assert "3 dead letters." in html
    facets = {e["aria-label"] for e in elements(html, "section", **{"class": "facet"})}
    assert facets == {"Status", "Source topic", "Error class", "Capability"}
    topic = f"{letters.topics.namespace}.goals"
    link = rf'href="/dlq\?topic={re.escape(topic)}"[^>]*>{re.escape(topic)}</a>'
    assert re.search(link + r' <span class="count">2</span>', html)
    assert re.search(
        r'href="/dlq\?error=ValueError"[^>]*>ValueError</a> <span class="count">2<', html
    )
    assert re.search(r'href="/dlq\?capability=echo"[^>]*>echo</a> <span class="count">1<', html)
    # The status facet counts every status under the other filters.
    assert re.search(r'href="/dlq\?status=resolved"[^>]*>resolved</a> <span class="count">1<', html)
    assert '<svg class="histogram"' in html
    assert len(re.findall(r'<rect class="bar"', html)) == 1  # all three in this hour
    assert re.search(r"<title>\d\d:00\u2013\d\d:00 UTC: 3</title>", html)
    assert "3 in the last 24 hours" in html
    nav = section(html, '<nav aria-label="Console"')
    assert elements(nav, "a", href="/dlq", hx_get="/dlq")


def test_filters_narrow_the_list_and_a_bad_one_says_why(
    analyst: TestClient, letters: DeadLetters
) -> None:
    old = letters.goal({"subject": "old"}, at=utcnow() - timedelta(days=3))
    goal = letters.goal({"subject": "connection refused by upstream"})
    task = letters.task("echo", "hello", error=KeyError("missing"))

    def ids(**params: str) -> list[int]:
        response = analyst.get("/dlq", params=params)
        assert response.status_code == 200, response.text
        return listed(response.text)

    assert ids() == [task, goal, old]
    assert ids(since="1d") == [task, goal]
    assert ids(topic="goals") == [goal, old]  # without the namespace
    assert ids(error="KeyError") == [task]
    assert ids(capability="echo") == [task]
    assert ids(text="upstream") == [goal]
    assert ids(status="resolved") == []
    assert ids(page_size="1", page="2") == [goal]
    bad = analyst.get("/dlq", params={"since": "yesterday-ish"})
    assert bad.status_code == 422
    assert "since=&#39;yesterday-ish&#39; is neither a duration" in bad.text
    fragment = analyst.get("/dlq", params={"error": "KeyError"}, headers=htmx("results"))
    assert fragment.text.lstrip().startswith('<div id="results"')
    assert listed(fragment.text) == [task]


# --- one dead letter ------------------------------------------------------------------------


def test_a_dead_letter_page_shows_hostile_bytes_as_text(
    analyst: TestClient, letters: DeadLetters
) -> None:
    letter_id = letters.add(
        topic=letters.topics.tasks("echo"),
        key=HOSTILE.encode(),
        value=orjson.dumps({"text": HOSTILE}),
        headers=(("x-note", HOSTILE.encode()), ("trace-bin", BINARY), (HOSTILE, b"name")),
        error=RuntimeError(HOSTILE),
    )
    raw = letters.add(topic=letters.topics.tasks("echo"), key=None, value=BINARY)

    response = analyst.get(f"/dlq/{letter_id}")

    html = assert_safe_page(response)
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    escaped = "&lt;script&gt;alert(&#34;dlq&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert html.count(escaped) >= 4  # key, header value, header name, error message
    assert "&lt;script&gt;alert(\\&#34;dlq\\&#34;)" in html  # in the pretty JSON payload
    assert '<code class="b64">//4AIG5vdCB1dGYtOA==</code>' in html
    assert "waypost-dlq-error-class" in html
    assert "waypost-dlq-stack-digest" in html
    assert "RuntimeError" in html
    assert f'action="/dlq/{letter_id}/replay"' in html
    binary = assert_safe_page(analyst.get(f"/dlq/{raw}"))
    assert "The value is not UTF-8" in binary
    assert "can be replayed as it is, not edited" in binary
    assert analyst.get("/dlq/999999").status_code == 404
    assert analyst.get(f"/dlq/{2**63}").status_code == 422  # not a bigint: no query at all


def test_a_dry_run_shows_the_diff_and_refuses_an_edit_that_breaks_the_schema(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    letter_id = letters.goal({"subjekt": "typo"})
    page = analyst.get(f"/dlq/{letter_id}").text
    original = letters.get(letter_id).payload
    assert original == {"type": "test.review", "input": {"subjekt": "typo"}}
    fixed = {"type": "test.review", "input": {"subject": "typo"}}
    broken = {"type": "test.review", "input": "not an object"}

    good = analyst.post(
        f"/dlq/{letter_id}/replay",
        data=form(analyst, page, op="dry_run", edit_kind="replace", edit=json.dumps(fixed)),
        headers=htmx("letter"),
    )
    bad = analyst.post(
        f"/dlq/{letter_id}/replay",
        data=form(analyst, page, op="dry_run", edit_kind="replace", edit=json.dumps(broken)),
        headers=htmx("letter"),
    )

    assert good.status_code == 200
    assert good.text.lstrip().startswith('<article id="letter"')
    assert "Valid: the record passes its event type&#39;s schema." in good.text
    assert (
        '<span class="diff-line diff-remove">-    &#34;subjekt&#34;: &#34;typo&#34;</span>'
        in good.text
    )
    assert (
        '<span class="diff-line diff-add">+    &#34;subject&#34;: &#34;typo&#34;</span>'
        in good.text
    )
    assert f"<code>{REPLAY_OF}</code></td><td><code>{letter_id}</code>" in good.text
    assert bad.status_code == 200
    assert re.search(r"Invalid: \w+: .*is not of type", bad.text)
    assert (
        '<span class="diff-line diff-add">+  &#34;input&#34;: &#34;not an object&#34;' in bad.text
    )
    assert json.dumps(broken, indent=2) not in bad.text  # kept as typed, but escaped
    assert "&#34;input&#34;: &#34;not an object&#34;" in bad.text
    assert outbox_rows(engine) == []
    assert letters.get(letter_id).status == "pending"
    not_json = analyst.post(
        f"/dlq/{letter_id}/replay",
        data=form(analyst, page, op="dry_run", edit_kind="replace", edit="{oops"),
        headers=htmx("letter"),
    )
    assert not_json.status_code == 422
    assert "The edit is not valid JSON" in not_json.text
    assert "{oops" in not_json.text  # what the analyst typed is kept


def test_a_replay_sends_once_and_a_second_replay_is_a_noop(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    letter_id = letters.goal({"subjekt": "typo"})
    page = analyst.get(f"/dlq/{letter_id}").text
    patch = {"input": {"subjekt": None, "subject": "typo"}}
    sent = form(analyst, page, op="replay", edit_kind="merge_patch", edit=json.dumps(patch))

    first = analyst.post(f"/dlq/{letter_id}/replay", data=sent, headers=htmx("letter"))
    replay_id = sent["request_id"]
    state_of(analyst).replays.wait(replay_id, timeout=30)
    again = analyst.post(f"/dlq/{letter_id}/replay", data=sent, headers=htmx("letter"))
    state_of(analyst).replays.wait(replay_id, timeout=30)

    assert first.status_code == again.status_code == 200
    (progress,) = elements(first.text, "section", id="progress")
    assert progress["hx-get"] == f"/dlq/replays/{replay_id}"
    assert progress["hx-trigger"] == "every 1s"
    assert elements(first.text, "a", href=f"/dlq/replays/{replay_id}")
    (row,) = outbox_rows(engine)
    original = letters.get(letter_id)
    assert row["topic"] == original.source_topic
    assert row["key"] == original.key
    assert orjson.loads(row["value"]) == {"type": "test.review", "input": {"subject": "typo"}}
    headers = dict(headers_from_json(row["headers"]))
    assert headers[REPLAY_OF] == str(letter_id).encode()
    assert (headers[REPLAY_COUNT], headers[REPLAY_REQUEST]) == (b"1", replay_id.encode())
    assert not any(name.startswith("waypost-dlq-") for name in headers)
    assert (original.status, original.status_by) == ("replayed", "ann")

    done = analyst.get(f"/dlq/replays/{replay_id}", headers=htmx("progress"))
    assert done.text.lstrip().startswith('<section id="progress"')
    assert "hx-trigger" not in done.text  # finished: the poll stops
    assert '<span class="n-sent">1 sent</span>' in done.text

    later = analyst.get(f"/dlq/{letter_id}").text
    assert request_id(later) != replay_id  # a fresh form, a fresh request
    noop = analyst.post(
        f"/dlq/{letter_id}/replay", data=form(analyst, later, op="replay"), headers=htmx("letter")
    )
    state_of(analyst).replays.wait(request_id(later), timeout=30)
    assert noop.status_code == 200
    assert len(outbox_rows(engine)) == 1
    history = analyst.get(f"/dlq/{letter_id}").text
    assert "already replayed by ann" in history
    assert history.count("/dlq/replays/") >= 2
    everything = assert_safe_page(analyst.get("/dlq/replays"))
    assert f">{replay_id}</a>" in everything
    assert f">{request_id(later)}</a>" in everything
    assert "1 in all: 1 sent, 0 no-op" in everything
    assert "1 in all: 0 sent, 1 no-op" in everything
    assert f'href="/dlq/{letter_id}"' in everything


def test_the_list_replays_a_selection_or_everything_that_matches(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    first = letters.task("echo", "one")
    second = letters.task("echo", "two")
    other = letters.goal({"subject": "three"})
    page = analyst.get("/dlq").text

    dry = analyst.post(
        "/dlq/replay?capability=echo",
        data=form(analyst, page, op="dry_run", scope="filter"),
        headers=htmx("results"),
    )
    nothing = analyst.post(
        "/dlq/replay", data=form(analyst, page, op="replay"), headers=htmx("results")
    )
    replayed = analyst.post(
        "/dlq/replay", data=form(analyst, page, op="replay", selected=[str(first), str(other)])
    )

    assert dry.status_code == 200
    assert "Dry run: 2 dead letter(s)" in dry.text
    assert '<li class="dlq-outcome-sent">2 would be sent</li>' in dry.text
    assert "no schema to check it against" in dry.text  # plain JSON task records
    assert nothing.status_code == 422
    assert "Select at least one dead letter" in nothing.text
    assert replayed.status_code == 303
    replay_id = request_id(page)
    assert replayed.headers["location"] == f"/dlq/replays/{replay_id}"
    state_of(analyst).replays.wait(replay_id, timeout=30)
    assert sorted(row["topic"] for row in outbox_rows(engine)) == sorted(
        [letters.get(first).source_topic, letters.get(other).source_topic]
    )
    assert [letters.get(i).status for i in (first, second, other)] == [
        "replayed",
        "pending",
        "replayed",
    ]
    progress = assert_safe_page(analyst.get(f"/dlq/replays/{replay_id}"))
    assert f'href="/dlq/{first}"' in progress
    assert f'href="/dlq/{other}"' in progress


def test_resolve_and_discard_need_a_reason(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    one = letters.task("echo", "one")
    two = letters.task("echo", "two")
    three = letters.task("echo", "three")
    token = csrf_token(analyst)

    no_reason = analyst.post(
        f"/dlq/{one}/close", data={"csrf_token": token, "op": "resolve", "reason": "  "}
    )
    list_no_reason = analyst.post(
        "/dlq/close", data={"csrf_token": token, "op": "discard", "selected": [str(two)]}
    )
    resolved = analyst.post(
        f"/dlq/{one}/close", data={"csrf_token": token, "op": "resolve", "reason": "fixed upstream"}
    )
    discarded = analyst.post(
        "/dlq/close",
        data={"csrf_token": token, "op": "discard", "reason": "junk", "selected": [two, one]},
        headers=htmx("results"),
    )
    twice = analyst.post(
        f"/dlq/{one}/close", data={"csrf_token": token, "op": "discard", "reason": "again"}
    )

    assert no_reason.status_code == 422
    assert "Give a reason to mark dead letters resolved" in no_reason.text
    assert list_no_reason.status_code == 422
    assert "Give a reason to mark dead letters discarded" in list_no_reason.text
    assert f'value="{two}" checked' in list_no_reason.text  # the selection is kept
    assert resolved.status_code == 303
    assert resolved.headers["location"] == f"/dlq/{one}?notice=resolved"
    assert "Resolved." in analyst.get(resolved.headers["location"]).text
    assert discarded.status_code == 200
    assert "Discarded 1 dead letter(s); 1 were not pending" in discarded.text
    assert twice.status_code == 409
    assert "It is resolved already" in twice.text
    one_now, two_now, three_now = (letters.get(i) for i in (one, two, three))
    assert (one_now.status, one_now.status_reason, one_now.status_by) == (
        "resolved",
        "fixed upstream",
        "ann",
    )
    assert (two_now.status, two_now.status_reason) == ("discarded", "junk")
    assert three_now.status == "pending"
    assert outbox_rows(engine) == []


# --- who may ----------------------------------------------------------------------------------


def test_reviewers_are_refused_and_anonymous_users_log_in_first(
    reviewer: TestClient,
    admin: TestClient,
    make_client: Callable[..., TestClient],
    letters: DeadLetters,
) -> None:
    letter_id = letters.task("echo", "one")
    token = csrf_token(reviewer)
    anonymous = make_client()

    for url in ("/dlq", f"/dlq/{letter_id}", "/dlq/replays", "/dlq/replays/x"):
        assert reviewer.get(url).status_code == 403, url
        assert admin.get(url).status_code in (200, 404), url
        away = anonymous.get(url)
        assert away.status_code == 303, url
        assert away.headers["location"].startswith("/login?next=")
    for url in ("/dlq/replay", "/dlq/close", f"/dlq/{letter_id}/replay", f"/dlq/{letter_id}/close"):
        refused = reviewer.post(url, data={"csrf_token": token, "op": "resolve", "reason": "x"})
        assert refused.status_code == 403, url
    assert letters.get(letter_id).status == "pending"
    assert 'href="/dlq"' not in section(reviewer.get("/inbox").text, '<nav aria-label="Console"')
    assert 'href="/dlq"' in section(admin.get("/inbox").text, '<nav aria-label="Console"')


def test_a_form_without_the_csrf_token_is_refused(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    letter_id = letters.task("echo", "one")
    page = analyst.get(f"/dlq/{letter_id}").text

    missing = analyst.post(
        f"/dlq/{letter_id}/replay", data={"request_id": request_id(page), "op": "replay"}
    )
    wrong = analyst.post(
        f"/dlq/{letter_id}/close", data={"csrf_token": "nope", "op": "resolve", "reason": "x"}
    )

    assert missing.status_code == wrong.status_code == 403
    assert "missing or wrong CSRF token" in missing.text
    assert letters.get(letter_id).status == "pending"
    assert outbox_rows(engine) == []
    assert state_of(analyst).replays.replayer.history() == []


def test_every_form_carries_a_request_id_of_its_own(
    analyst: TestClient, letters: DeadLetters
) -> None:
    letter_id = letters.task("echo", "one")

    ids = {request_id(analyst.get(f"/dlq/{letter_id}").text) for _ in range(3)}
    ids |= {request_id(analyst.get("/dlq").text) for _ in range(3)}

    assert len(ids) == 6
    assert all(uuid.UUID(i) for i in ids)


# --- header edits: repairing a malformed event ------------------------------------------------


def _misaddressed_goal(letters: DeadLetters) -> int:
    """A goal whose ce_type is misspelt: undecodable as it is, fine once repaired."""
    encoded = default_codec().encode(
        Event(GoalSubmitted(type="test.review", input={"subject": "s"}), source="test")
    )
    headers = tuple(
        (name, b"waypost.goal.submited" if name == "ce_type" else value)
        for name, value in encoded.headers
    )
    return letters.add(
        topic=letters.topics.goals, key=encoded.key, value=encoded.value, headers=headers
    )


def test_a_header_edit_repairs_a_malformed_event_in_the_console(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    letter_id = _misaddressed_goal(letters)
    page = analyst.get(f"/dlq/{letter_id}").text
    assert elements(page, "textarea", name="headers_edit")
    repair = json.dumps({"ce_type": "waypost.goal.submitted"})

    as_it_is = analyst.post(
        f"/dlq/{letter_id}/replay", data=form(analyst, page, op="dry_run"), headers=htmx("letter")
    )
    dry = analyst.post(
        f"/dlq/{letter_id}/replay",
        data=form(analyst, page, op="dry_run", headers_edit=repair),
        headers=htmx("letter"),
    )
    reserved = analyst.post(
        f"/dlq/{letter_id}/replay",
        data=form(analyst, page, op="dry_run", headers_edit='{"waypost-dlq-reason": null}'),
        headers=htmx("letter"),
    )
    not_text = analyst.post(
        f"/dlq/{letter_id}/replay",
        data=form(analyst, page, op="dry_run", headers_edit='{"ce_type": 7}'),
        headers=htmx("letter"),
    )

    assert "unknown ce_type &#39;waypost.goal.submited&#39;" in as_it_is.text
    assert "Valid: the record passes its event type&#39;s schema." in dry.text
    assert "<code>ce_type</code> set to <code>waypost.goal.submitted</code>" in dry.text
    assert reserved.status_code == not_text.status_code == 422
    assert "written by the replay itself" in reserved.text
    assert "waypost-dlq-reason" in reserved.text  # what the analyst typed is kept
    assert "A header edit is a JSON object of text values" in not_text.text
    assert outbox_rows(engine) == []

    sent = form(analyst, page, op="replay", headers_edit=repair)
    analyst.post(f"/dlq/{letter_id}/replay", data=sent, headers=htmx("letter"))
    state_of(analyst).replays.wait(sent["request_id"], timeout=30)
    (row,) = outbox_rows(engine)
    headers = dict(headers_from_json(row["headers"]))
    assert headers["ce_type"] == b"waypost.goal.submitted"
    assert default_codec().decode(row["value"], headers_from_json(row["headers"]))
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["dlq.replay"])
    assert entry.detail["edit"] == {"headers": {"ce_type": "waypost.goal.submitted"}}


def test_the_api_replays_with_a_header_edit_and_refuses_an_insane_one(
    analyst: TestClient, letters: DeadLetters, engine: Engine
) -> None:
    letter_id = _misaddressed_goal(letters)
    with engine.begin() as conn:
        token, _ = auth_store.create_token(conn, name="api-analyst", role=Role.ANALYST)
    bearer = {"Authorization": f"Bearer {token}"}

    def replay(edit: dict[str, Any], **more: Any) -> Any:
        body = {"ids": [letter_id], "edit": edit, **more}
        return analyst.post("/api/v1/dlq/replays", json=body, headers=bearer)

    refusals = {
        "reserved": replay({"headers": {"waypost-replay-count": "0"}}),
        "control": replay({"headers": {"ce_type": "a\nb"}}),
        "name": replay({"headers": {"bad name": "x"}}),
        "long": replay({"headers": {"ce_type": "x" * 5000}}),
        "empty": replay({"headers": {}}),
        "both": replay({"replace": {}, "merge_patch": {}}),
    }
    dry = replay({"headers": {"ce_type": "waypost.goal.submitted", "x": None}}, dry_run=True)

    assert {name: r.status_code for name, r in refusals.items()} == dict.fromkeys(refusals, 422)
    assert "written by the replay itself" in refusals["reserved"].json()["detail"]
    assert dry.status_code == 200
    (preview,) = dry.json()["previews"]
    assert preview["outcome"] == "sent"
    assert {"name": "ce_type", "value": "waypost.goal.submitted", "base64": None} in preview[
        "headers"
    ]
    started = replay({"headers": {"ce_type": "waypost.goal.submitted"}}, request_id="hdr-1")
    assert started.status_code == 202
    assert started.json()["edit"] == {"headers": {"ce_type": "waypost.goal.submitted"}}
    state_of(analyst).replays.wait("hdr-1", timeout=30)
    (row,) = outbox_rows(engine)
    assert dict(headers_from_json(row["headers"]))["ce_type"] == b"waypost.goal.submitted"
