"""The replay requests' rows on the real PostgreSQL: a request id is taken once, its
items are frozen, pending items are claimed by one transaction at a time, outcomes and
the end of a request are recorded, and the history reports each request with its own
counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from orchestrator.dead_letters.records import index_row
from orchestrator.store import dead_letters as index
from orchestrator.store import replays
from orchestrator.store.dead_letters import DeadLetterFilter
from orchestrator.store.replays import ItemOutcome
from waypost.bus.records import ReceivedRecord
from waypost.topics import Topics

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def dead_letters(engine: Engine, *sources: str) -> list[int]:
    """One dead letter per source topic given; their ids in order."""
    topics = Topics("ns")
    rows = [
        index_row(ReceivedRecord(f"{source}.dlq", 0, n, b"k", b'{"n": %d}' % n, ()), topics)
        for n, source in enumerate(sources)
    ]
    with engine.begin() as conn:
        index.index(conn, rows=rows)
        return index.matching_ids(conn, filters=DeadLetterFilter(status=None), namespace="ns")


def request(engine: Engine, request_id: str, ids: list[int], *, at: datetime = T0) -> bool:
    with engine.begin() as conn:
        created = replays.create(
            conn,
            request_id=request_id,
            actor="ann",
            created_at=at,
            selection={"ids": ids},
            target_topic=None,
            edit={"merge_patch": {"a": 1}},
            rate=None,
            force=False,
        )
        if created:
            replays.add_items(conn, request_id=request_id, dead_letter_ids=ids)
    return created


def test_a_request_id_is_taken_once_and_its_items_are_frozen(engine: Engine) -> None:
    ids = dead_letters(engine, "ns.goals", "ns.tasks.echo")

    assert request(engine, "r1", ids)
    assert not request(engine, "r1", ids[:1])

    with engine.connect() as conn:
        state = replays.get(conn, request_id="r1")
        assert replays.get(conn, request_id="r2") is None
        assert replays.pending_count(conn, request_id="r1") == 2
        topics = replays.pending_source_topics(conn, request_id="r1")
    assert state is not None
    assert (state.state, state.total, state.done, state.actor) == ("running", 2, 0, "ann")
    assert state.counts == {"sent": 0, "noop": 0, "refused": 0, "invalid": 0, "pending": 2}
    assert (state.selection, state.edit) == ({"ids": ids}, {"merge_patch": {"a": 1}})
    assert topics == {"ns.goals", "ns.tasks.echo"}


def test_pending_items_are_claimed_by_one_transaction_at_a_time(engine: Engine) -> None:
    ids = dead_letters(engine, "ns.goals", "ns.goals", "ns.goals")
    request(engine, "r1", ids)

    with engine.begin() as first, engine.begin() as second:
        mine = replays.claim_pending(first, request_id="r1", limit=2)
        theirs = replays.claim_pending(second, request_id="r1", limit=2)

    assert mine == ids[:2]
    assert theirs == ids[2:]  # the locked ones are skipped, not waited for


def test_outcomes_and_the_end_of_a_request_are_recorded(engine: Engine) -> None:
    ids = dead_letters(engine, "ns.goals", "ns.tasks.echo")
    request(engine, "r1", ids)
    outcomes = [
        ItemOutcome(ids[0], "sent", None, "ns.goals"),
        ItemOutcome(ids[1], "refused", "replayed 3 time(s) already", None),
    ]

    with engine.begin() as conn:
        replays.record_outcomes(conn, request_id="r1", outcomes=outcomes, at=T0)
        replays.finish(conn, request_id="r1", state="done", at=T0, error=None)
        replays.finish(conn, request_id="r1", state="failed", at=T0, error="too late")
    with engine.connect() as conn:
        state = replays.get(conn, request_id="r1")
        entries = replays.replays_of(conn, dead_letter_id=ids[1])
        pending = replays.pending_count(conn, request_id="r1")

    assert state is not None
    assert (state.state, state.finished_at, state.error) == ("done", T0, None)
    assert (state.counts["sent"], state.counts["refused"], state.done, pending) == (1, 1, 2, 0)
    (entry,) = entries
    assert (entry.request_id, entry.outcome, entry.detail, entry.topic, entry.at) == (
        "r1",
        "refused",
        "replayed 3 time(s) already",
        None,
        T0,
    )


def test_the_history_shows_each_request_with_its_own_counts(engine: Engine) -> None:
    ids = dead_letters(engine, "ns.goals", "ns.goals", "ns.goals")
    request(engine, "old", ids, at=T0)
    request(engine, "new", ids[:1], at=T0 + timedelta(minutes=1))
    request(engine, "empty", [], at=T0 + timedelta(minutes=2))
    with engine.begin() as conn:
        outcome = ItemOutcome(ids[0], "noop", "already replayed", None)
        replays.record_outcomes(conn, request_id="new", outcomes=[outcome], at=T0)
        replays.finish(conn, request_id="new", state="done", at=T0, error=None)

    with engine.connect() as conn:
        history = replays.newest(conn, limit=10)
        latest = replays.newest(conn, limit=1)
        running = replays.running(conn)

    assert [(s.id, s.total, s.counts["pending"], s.counts["noop"]) for s in history] == [
        ("empty", 0, 0, 0),
        ("new", 1, 0, 1),
        ("old", 3, 3, 0),
    ]
    assert [s.id for s in latest] == ["empty"]
    assert running == ["old", "empty"]  # oldest first, to resume in order
