"""Login throttling on the real PostgreSQL (``now`` passed in): what admitting and
settling attempts store, locks and their audit rows, lifting, pruning, and concurrent
attempts counted one after the other."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from orchestrator.store import audit
from review_ui.auth import throttle_store
from review_ui.auth.tables import login_throttle
from review_ui.auth.throttle import NO_WAIT, Policies, Scope, ThrottlePolicy

pytestmark = pytest.mark.integration

T0 = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=10)
POLICIES = Policies(
    name=ThrottlePolicy(3, 5, WINDOW, LOCK, timedelta(seconds=60)),
    client=ThrottlePolicy(6, 8, WINDOW, LOCK, timedelta(seconds=60)),
)
CLIENT = "203.0.113.7"


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def keys(name: str, client: str = CLIENT) -> list[tuple[Scope, str]]:
    return [(Scope.NAME, name), (Scope.CLIENT, client)]


def attempt(
    engine: Engine,
    name: str,
    at: datetime,
    *,
    ok: bool = False,
    client: str = CLIENT,
    policies: Policies = POLICIES,
) -> timedelta:
    """A login attempt as the form makes it: admitted, then settled 50 ms later. Its
    wait if refused, else the wait it leaves for the next attempt."""
    wanted = keys(name, client)
    with engine.begin() as conn:
        refused = throttle_store.admit(conn, keys=wanted, now=at, policies=policies)
    if refused > NO_WAIT:
        return refused
    with engine.begin() as conn:
        if ok:
            throttle_store.settle_success(conn, keys=wanted, attempt_at=at)
            return NO_WAIT
        return throttle_store.settle_failure(
            conn,
            keys=wanted,
            attempt_at=at,
            now=at + s(0.05),
            policies=policies,
            detail={"client": client, "via": "login"},
        )


def lock(
    engine: Engine, name: str, *, client: str = CLIENT, policies: Policies = POLICIES
) -> datetime:
    """Fail ``name``'s logins as fast as it may until it locks; when the last one began
    (the lock starts 50 ms later)."""
    at = T0
    for n in range(policies.name.lock_after):
        if n:
            at += wait(engine, Scope.NAME, name, at, policies)  # exactly as long as told
        attempt(engine, name, at, client=client, policies=policies)
    return at


def stored(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    with engine.connect() as conn:
        return {
            (r.scope, r.key): dict(r._mapping) for r in conn.execute(select(login_throttle)).all()
        }


def wait(
    engine: Engine, scope: Scope, key: str, now: datetime, policies: Policies = POLICIES
) -> timedelta:
    with engine.connect() as conn:
        return throttle_store.wait(conn, scope=scope, key=key, now=now, policies=policies)


def test_failures_of_a_name_make_its_attempts_wait_from_any_client(engine: Engine) -> None:
    for n in range(3):
        attempt(engine, "rita", T0 + s(n), client=f"198.51.100.{n}")

    # The third failure makes the next attempt wait 1 s, whichever client makes it.
    assert wait(engine, Scope.NAME, "rita", T0 + s(2.5)) == s(0.5)
    assert attempt(engine, "rita", T0 + s(2.5), ok=True, client="192.0.2.99") == s(0.5)
    assert wait(engine, Scope.NAME, "rito", T0 + s(2.5)) == NO_WAIT  # another name: no
    # The refused attempt was not counted: after the wait it is the fourth.
    assert stored(engine)[("name", "rita")]["failures"] == [T0, T0 + s(1), T0 + s(2)]


def test_an_unknown_name_is_counted_like_any_other(engine: Engine) -> None:
    # The store never looks at users: a counter exists for whatever name was typed.
    for n in range(3):
        attempt(engine, "nobody-has-this-name", T0 + s(n))

    assert wait(engine, Scope.NAME, "nobody-has-this-name", T0 + s(2)) == s(1)


def test_failures_across_names_make_the_client_wait(engine: Engine) -> None:
    for n in range(6):
        attempt(engine, f"user{n}", T0 + s(n))

    assert wait(engine, Scope.CLIENT, CLIENT, T0 + s(5)) == s(1)
    assert attempt(engine, "user99", T0 + s(5.2)) == s(0.8)
    assert wait(engine, Scope.CLIENT, "192.0.2.1", T0 + s(5.2)) == NO_WAIT


def test_the_lock_is_stored_audited_and_ends_by_itself(engine: Engine) -> None:
    at = lock(engine, "rita")
    locked_at = at + s(0.05)
    row = stored(engine)[("name", "rita")]

    assert (row["locked_at"], row["locked_until"]) == (locked_at, locked_at + LOCK)
    assert len(row["failures"]) == 5
    # Refused, whatever the password, without checking it.
    assert attempt(engine, "rita", at + s(1), ok=True) == locked_at + LOCK - at - s(1)
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["login_locked"])
        assert [c.key for c in throttle_store.locks(conn, now=at + s(1))] == ["rita"]
        assert throttle_store.locks(conn, now=locked_at + LOCK) == []
    assert entry.actor == "waypost:throttle"
    assert entry.detail == {
        "scope": "name",
        "name": "rita",
        "client": CLIENT,
        "via": "login",
        "failures": 5,
        "window_s": 900.0,
        "locked_until": (locked_at + LOCK).isoformat(),
    }
    # The lock ends by itself: the right password is then accepted, and forgets it all.
    assert attempt(engine, "rita", locked_at + LOCK, ok=True) == NO_WAIT
    assert ("name", "rita") not in stored(engine)


def test_a_success_forgets_the_names_failures_but_not_the_clients(engine: Engine) -> None:
    attempt(engine, "rita", T0)
    attempt(engine, "rita", T0 + s(1))

    attempt(engine, "rita", T0 + s(2), ok=True)

    rows = stored(engine)
    assert ("name", "rita") not in rows
    assert rows[("client", CLIENT)]["failures"] == [T0, T0 + s(1)]


def test_lifting_a_lock_is_audited_and_lets_the_name_in_at_once(engine: Engine) -> None:
    at = lock(engine, "rita") + s(1)

    with engine.begin() as conn:
        lifted = throttle_store.lift(
            conn, scope=Scope.NAME, key="rita", actor="ada", now=at, policies=POLICIES
        )
        again = throttle_store.lift(
            conn, scope=Scope.NAME, key="rita", actor="ada", now=at, policies=POLICIES
        )

    assert lifted is not None
    assert lifted.locked(at)
    assert again is None  # nothing left to lift: no second audit row
    assert attempt(engine, "rita", at + s(0.1), ok=True) == NO_WAIT
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["login_unlocked"])
    assert entry.actor == "ada"
    assert entry.detail["scope"] == "name"
    assert entry.detail["name"] == "rita"
    assert entry.detail["failures"] == 5
    assert entry.detail["was_locked"] is True


def test_bad_tokens_count_against_the_client_and_lock_it(engine: Engine) -> None:
    for n in range(8):
        with engine.begin() as conn:
            throttle_store.record_failure(
                conn,
                scope=Scope.CLIENT,
                key=CLIENT,
                now=T0 + s(n * 30),
                policies=POLICIES,
                detail={"via": "api_token"},
            )

    assert wait(engine, Scope.CLIENT, CLIENT, T0 + s(7 * 30)) == LOCK
    with engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["login_locked"])
    assert entry.detail["scope"] == "client"
    assert entry.detail["client"] == CLIENT
    assert entry.detail["via"] == "api_token"
    assert entry.detail["failures"] == 8


def test_counters_with_nothing_left_in_the_window_are_pruned(engine: Engine) -> None:
    attempt(engine, "old", T0, client="192.0.2.1")
    later = T0 + WINDOW + s(1)

    attempt(engine, "new", later)

    assert set(stored(engine)) == {("name", "new"), ("client", CLIENT)}


def test_a_lock_in_force_is_not_pruned(engine: Engine) -> None:
    long_locks = Policies(
        name=ThrottlePolicy(3, 5, WINDOW, timedelta(hours=1), timedelta(seconds=60)),
        client=POLICIES.client,
    )
    lock(engine, "rita", client="192.0.2.1", policies=long_locks)

    attempt(engine, "new", T0 + WINDOW + s(60), policies=long_locks)

    rows = stored(engine)
    assert ("name", "rita") in rows  # its failures left the window, its lock holds
    assert ("client", "192.0.2.1") not in rows


def test_concurrent_attempts_of_one_name_are_counted_one_after_the_other(
    engine: Engine,
) -> None:
    # Ten attempts at the same moment on ten connections: only as many as the delay
    # threshold may be checked; the others are refused without being counted.
    barrier = threading.Barrier(10)
    admitted: list[bool] = []

    def admit(n: int) -> None:
        barrier.wait(timeout=30)
        with engine.begin() as conn:
            refused = throttle_store.admit(
                conn, keys=keys("rita", f"192.0.2.{n}"), now=T0, policies=POLICIES
            )
        admitted.append(refused == NO_WAIT)

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(admitted) == 10
    assert admitted.count(True) == 3
    assert len(stored(engine)[("name", "rita")]["failures"]) == 3
