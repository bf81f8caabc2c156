"""Login throttling in PostgreSQL: every query on ``login_throttle`` (the decisions are
``throttle``'s). Every HTTP app replica shares the counters.

A login takes two transactions: ``admit`` (before the password is checked: refuse, or
count the attempt) and then ``settle_failure`` or ``settle_success``. An API request
with a bearer token asks ``wait`` (read only) before the token is looked up, and an
unknown or revoked token is a ``record_failure`` of its client. Each takes its counters'
rows with ``FOR UPDATE``, a name's before its client's, so concurrent attempts are
counted one after the other. Locks and lifted locks are audited in the same
transaction; rows with nothing left to count are pruned as failures are written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.auth import throttle
from review_ui.auth.tables import login_throttle
from review_ui.auth.throttle import NO_WAIT, Counter, Policies, Scope

ACTOR = "waypost:throttle"
LOCKED = "login_locked"
UNLOCKED = "login_unlocked"

Key = tuple[Scope, str]


def admit(conn: Connection, *, keys: Sequence[Key], now: datetime, policies: Policies) -> timedelta:
    """Before credentials are checked: ``NO_WAIT`` and the attempt counted for every key
    (until it settles), or the longest wait one of them asks for, nothing counted."""
    counters = [_take(conn, scope, key) for scope, key in keys]
    longest = max((throttle.wait(c, now, policies.of(c.scope)) for c in counters), default=NO_WAIT)
    for counter in counters:
        policy = policies.of(counter.scope)
        # Refused: nothing counted (rows created just now and still empty go again).
        _save(conn, counter if longest > NO_WAIT else throttle.attempted(counter, now, policy))
    return longest


def settle_failure(
    conn: Connection,
    *,
    keys: Sequence[Key],
    attempt_at: datetime,
    now: datetime,
    policies: Policies,
    detail: Mapping[str, Any],
) -> timedelta:
    """The attempt ``admit`` counted at ``attempt_at`` failed: keep it counted, and lock
    the counters that reached their lock threshold (audited, with ``detail`` added).
    Returns how long the next attempt must wait."""
    longest = NO_WAIT
    for scope, key in keys:
        policy = policies.of(scope)
        outcome = throttle.failed(_take(conn, scope, key), attempt_at, now, policy)
        _save(conn, outcome.counter)
        if outcome.locked:
            _audit_lock(conn, outcome.counter, now, policies, detail)
        longest = max(longest, throttle.wait(outcome.counter, now, policy))
    _prune(conn, now=now, policies=policies)
    return longest


def record_failure(
    conn: Connection,
    *,
    scope: Scope,
    key: str,
    now: datetime,
    policies: Policies,
    detail: Mapping[str, Any],
) -> timedelta:
    """A failure that was not admitted first (an unknown or revoked API token), which
    may lock the counter (audited, with ``detail`` added). Returns how long the next
    attempt must wait."""
    return settle_failure(
        conn, keys=[(scope, key)], attempt_at=now, now=now, policies=policies, detail=detail
    )


def settle_success(conn: Connection, *, keys: Sequence[Key], attempt_at: datetime) -> None:
    """The attempt ``admit`` counted at ``attempt_at`` succeeded: a name's failures are
    forgotten, a client gets this attempt back."""
    for scope, key in keys:
        _save(conn, throttle.succeeded(_take(conn, scope, key), attempt_at))


def wait(
    conn: Connection, *, scope: Scope, key: str, now: datetime, policies: Policies
) -> timedelta:
    """How long the next attempt of a name or client must wait (no row lock taken)."""
    row = conn.execute(
        select(login_throttle).where(login_throttle.c.scope == scope, login_throttle.c.key == key)
    ).first()
    if row is None:
        return NO_WAIT
    return throttle.wait(_counter(row), now, policies.of(scope))


def locks(conn: Connection, *, now: datetime) -> list[Counter]:
    """Every lock in force, names first, each by when it ends."""
    rows = conn.execute(
        select(login_throttle)
        .where(login_throttle.c.locked_until > now)
        .order_by(login_throttle.c.scope.desc(), login_throttle.c.locked_until)
    ).all()
    return [_counter(row) for row in rows]


def lift(
    conn: Connection,
    *,
    scope: Scope,
    key: str,
    actor: str,
    now: datetime,
    policies: Policies,
) -> Counter | None:
    """Lift the lock of a name or client address and forget its failures, audited as
    ``login_unlocked`` by ``actor``; the counter as it was, or None if it had neither a
    lock nor a failure in the window (nothing to lift, nothing audited).

    What the console's Users page and ``waypost user unlock NAME`` call."""
    row = conn.execute(
        select(login_throttle)
        .where(login_throttle.c.scope == scope, login_throttle.c.key == key)
        .with_for_update()
    ).first()
    if row is None:
        return None
    counter = _counter(row)
    _save(conn, throttle.lifted(counter))
    if counter.idle(now, policies.of(scope)):
        return None
    detail = _describe(counter, now, policies) | {"was_locked": counter.locked(now)}
    audit.record(conn, entries=[AuditEntry(actor=actor, action=UNLOCKED, detail=detail, at=now)])
    return counter


def _take(conn: Connection, scope: Scope, key: str) -> Counter:
    """The counter's row, created if missing, locked until the transaction ends."""
    # An upsert that always touches the row: it exists and is locked in one statement,
    # even when another transaction deletes or creates it at the same moment.
    statement = insert(login_throttle).values(scope=scope.value, key=key)
    row = conn.execute(
        statement.on_conflict_do_update(
            index_elements=[login_throttle.c.scope, login_throttle.c.key],
            set_={"key": statement.excluded.key},
        ).returning(*login_throttle.c)
    ).one()
    return _counter(row)


def _save(conn: Connection, counter: Counter) -> None:
    where = and_(login_throttle.c.scope == counter.scope, login_throttle.c.key == counter.key)
    if not counter.failures and counter.locked_until is None:
        conn.execute(delete(login_throttle).where(where))
        return
    conn.execute(
        update(login_throttle)
        .where(where)
        .values(
            failures=list(counter.failures),
            last_failure_at=counter.failures[-1] if counter.failures else None,
            locked_at=counter.locked_at,
            locked_until=counter.locked_until,
        )
    )


def _prune(conn: Connection, *, now: datetime, policies: Policies) -> None:
    """Forget the counters with no failure left in the window and no lock in force."""
    window = max(policies.name.window, policies.client.window)
    conn.execute(
        delete(login_throttle).where(
            or_(
                login_throttle.c.last_failure_at < now - window,
                login_throttle.c.last_failure_at.is_(None),
            ),
            or_(login_throttle.c.locked_until.is_(None), login_throttle.c.locked_until <= now),
        )
    )


def _audit_lock(
    conn: Connection,
    counter: Counter,
    now: datetime,
    policies: Policies,
    detail: Mapping[str, Any],
) -> None:
    described = _describe(counter, now, policies) | dict(detail)
    audit.record(conn, entries=[AuditEntry(actor=ACTOR, action=LOCKED, detail=described, at=now)])


def _describe(counter: Counter, now: datetime, policies: Policies) -> dict[str, Any]:
    policy = policies.of(counter.scope)
    return {
        "scope": counter.scope.value,
        counter.scope.value: counter.key,
        "failures": len(counter.recent(now, policy)),
        "window_s": policy.window.total_seconds(),
        "locked_until": counter.locked_until.isoformat() if counter.locked_until else None,
    }


def _counter(row: Row[Any]) -> Counter:
    return Counter(
        scope=Scope(row.scope),
        key=row.key,
        failures=tuple(row.failures),
        locked_at=row.locked_at,
        locked_until=row.locked_until,
    )
