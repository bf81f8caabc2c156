"""The transactional outbox on the real PostgreSQL, one migrated schema per test.

Writers publish their own rows right after commit; ``claim`` serves the relay, which
sweeps rows older than a grace period, so several relays must never claim the same row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from orchestrator.store import outbox
from waypost.bus.records import OutgoingRecord
from waypost.events import Event, GoalSubmitted, default_codec

pytestmark = pytest.mark.integration

# Far enough ahead that every row counts as old: the grace filter is tested on its own.
LATER = datetime(2100, 1, 1, tzinfo=UTC)


def record(n: int, topic: str = "ns.tasks.echo") -> OutgoingRecord:
    """A distinct record."""
    return OutgoingRecord(
        topic, f"key-{n}".encode(), f"value-{n}".encode(), (("n", str(n).encode()),)
    )


def enqueue(engine: Engine, records: list[OutgoingRecord]) -> list[int]:
    """Enqueue in a committed transaction of its own."""
    with engine.begin() as conn:
        return outbox.enqueue(conn, records=records)


def claim_all(engine: Engine) -> list[tuple[int, OutgoingRecord]]:
    """Every row, claimed in a transaction that ends at once (nothing removed)."""
    with engine.begin() as conn:
        return outbox.claim(conn, limit=1000, created_before=LATER)


def backlog(engine: Engine) -> int:
    """Rows waiting, seen from a fresh transaction."""
    with engine.connect() as conn:
        return outbox.backlog(conn)


@pytest.fixture
def other_connection(engine: Engine) -> Iterator[Connection]:
    """A second connection, for a concurrent transaction."""
    with engine.connect() as conn:
        yield conn


def test_enqueue_claim_remove_backlog(engine: Engine) -> None:
    sent = [record(1), OutgoingRecord("ns.other", None, None), record(3)]
    assert backlog(engine) == 0

    ids = enqueue(engine, sent)

    assert len(ids) == 3
    assert ids == sorted(ids)  # in the order given
    assert backlog(engine) == 3
    with engine.begin() as conn:
        first_two = outbox.claim(conn, limit=2, created_before=LATER)
        assert first_two == list(zip(ids[:2], sent[:2], strict=True))  # oldest first, intact
        outbox.remove(conn, ids=ids[:2])
    assert backlog(engine) == 1
    assert claim_all(engine) == [(ids[2], sent[2])]


def test_enqueue_returns_the_id_of_each_record(engine: Engine) -> None:
    sent = [record(n) for n in range(5)]

    ids = enqueue(engine, sent)

    assert dict(claim_all(engine)) == dict(zip(ids, sent, strict=True))


def test_records_without_keys_values_or_headers_round_trip(engine: Engine) -> None:
    # A batch in which no record has a key (nor a value): the arrays are all NULL.
    sent = [OutgoingRecord("ns.a", None, None), OutgoingRecord("ns.b", None, b"")]

    enqueue(engine, sent)

    assert [r for _, r in claim_all(engine)] == sent


def test_claim_does_not_delete_and_remove_of_nothing_is_harmless(engine: Engine) -> None:
    enqueue(engine, [record(1), record(2)])

    with engine.begin() as conn:
        claimed = outbox.claim(conn, limit=10, created_before=LATER)
        outbox.remove(conn, ids=[])

    assert claim_all(engine) == claimed
    assert backlog(engine) == 2


def test_enqueue_of_nothing_adds_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        assert outbox.enqueue(conn, records=[]) == []
    assert backlog(engine) == 0


def test_a_rolled_back_enqueue_leaves_nothing(engine: Engine) -> None:
    with engine.connect() as conn, conn.begin() as transaction:
        outbox.enqueue(conn, records=[record(1)])
        assert outbox.backlog(conn) == 1
        transaction.rollback()
    assert backlog(engine) == 0


def test_claim_takes_only_rows_older_than_the_grace_period(engine: Engine) -> None:
    old_ids = enqueue(engine, [record(1), record(2)])
    new_ids = enqueue(engine, [record(3)])
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE outbox SET created_at = now() - interval '1 minute' WHERE id = ANY(:ids)"),
            {"ids": old_ids},
        )
        db_now = conn.execute(text("SELECT now()")).scalar_one()

    with engine.begin() as conn:
        swept = outbox.claim(conn, limit=10, created_before=db_now - timedelta(seconds=5))

    assert [row_id for row_id, _ in swept] == old_ids
    assert new_ids[0] not in {row_id for row_id, _ in swept}


def test_headers_round_trip(engine: Engine) -> None:
    headers = (
        ("ce_id", b"abc"),
        ("repeated", b"first"),
        ("repeated", b"second"),
        ("empty", b""),
        ("unicode", "café ☕ 東京".encode()),
        ("quote", b'say "hi" \\ [1, 2]'),
    )
    sent = [OutgoingRecord("ns.t", b"k", b"v", headers), OutgoingRecord("ns.t", b"k", b"v")]

    enqueue(engine, sent)

    claimed = [r for _, r in claim_all(engine)]
    assert claimed[0].headers == headers  # order and duplicates kept
    assert claimed[1].headers == ()


def test_an_encoded_event_survives_the_outbox(engine: Engine) -> None:
    codec = default_codec()
    event = Event(
        GoalSubmitted(type="test.echo", input={"text": "héllo", "n": [1, 2.5, None]}),
        source="tests",
        traceparent="00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
    )
    encoded = codec.encode(event)

    enqueue(engine, [OutgoingRecord("ns.goals", encoded.key, encoded.value, encoded.headers)])

    ((_, stored),) = claim_all(engine)
    assert codec.decode(stored.value, stored.headers) == event
    assert stored.key == encoded.key


def test_concurrent_claimers_get_disjoint_rows(
    engine: Engine, other_connection: Connection
) -> None:
    enqueue(engine, [record(n) for n in range(10)])

    with engine.begin() as conn:
        first = outbox.claim(conn, limit=4, created_before=LATER)
        with other_connection.begin():
            second = outbox.claim(other_connection, limit=100, created_before=LATER)
            with engine.begin() as third_conn:
                third = outbox.claim(third_conn, limit=100, created_before=LATER)

    first_ids = {row_id for row_id, _ in first}
    second_ids = {row_id for row_id, _ in second}
    assert len(first_ids) == 4
    assert len(second_ids) == 6
    assert first_ids.isdisjoint(second_ids)
    assert [r.value for _, r in first + second] == [f"value-{n}".encode() for n in range(10)]
    assert third == []  # everything is claimed by someone: a third relay gets nothing


def test_rows_claimed_by_a_transaction_that_rolled_back_are_claimable_again(
    engine: Engine, other_connection: Connection
) -> None:
    enqueue(engine, [record(n) for n in range(3)])

    with other_connection.begin() as transaction:
        crashed = outbox.claim(other_connection, limit=10, created_before=LATER)
        transaction.rollback()  # e.g. the relay died before the broker acknowledged

    assert claim_all(engine) == crashed


def test_rows_of_an_uncommitted_writer_are_invisible_to_claimers(
    engine: Engine, other_connection: Connection
) -> None:
    with other_connection.begin():
        outbox.enqueue(other_connection, records=[record(1)])

        assert claim_all(engine) == []
        assert backlog(engine) == 0

    assert len(claim_all(engine)) == 1
