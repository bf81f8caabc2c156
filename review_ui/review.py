"""Reviewer operations over HTTP, for the JSON API and the console alike: decide, comment,
claim, unclaim, assign. Each runs in its own transaction as the principal; a refusal
becomes a ``Problem`` (404, 409 or 422 with the rules' message); events are published
and the decision observed (its ``review`` span, the decision-time metric) only after
the transaction committed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection

from orchestrator.publishing.outbox import OutboxRows
from orchestrator.review import Accepted, DecisionRequest, InvalidDecision, Reviewer, ReviewError
from orchestrator.workflow.state import EscalationState
from review_ui.auth import store as auth_store
from review_ui.auth.principal import Principal
from review_ui.auth.roles import Role
from review_ui.deps import AppState
from review_ui.problems import Problem
from waypost.events import utcnow

T = TypeVar("T")


def reviewer_of(principal: Principal) -> Reviewer:
    """The reviewer a principal acts as (admins may override claims)."""
    return Reviewer(principal.name, may_override=principal.role is Role.ADMIN)


def decide(state: AppState, principal: Principal, request: DecisionRequest) -> Accepted:
    """Decide an escalation on the version and digest the reviewer saw."""
    accepted = _run(
        state,
        lambda conn, now: state.reviews.decide(
            conn, request=request, reviewer=reviewer_of(principal), now=now
        ),
    )
    state.reviews.committed(accepted)
    _publish(state, accepted.outbox)
    return accepted


def comment(
    state: AppState, principal: Principal, *, escalation_id: str, text: str, version: int
) -> None:
    """Comment on the version of an escalation the reviewer saw."""
    rows = _run(
        state,
        lambda conn, now: state.reviews.comment(
            conn,
            escalation_id=escalation_id,
            text=text,
            version=version,
            reviewer=reviewer_of(principal),
            now=now,
        ),
    )
    _publish(state, rows)


def claim(state: AppState, principal: Principal, escalation_id: str) -> EscalationState:
    """Take an escalation."""
    return _run(
        state,
        lambda conn, now: state.reviews.claim(
            conn, escalation_id=escalation_id, reviewer=reviewer_of(principal), now=now
        ),
    )


def unclaim(state: AppState, principal: Principal, escalation_id: str) -> EscalationState:
    """Give an escalation back to its group."""
    return _run(
        state,
        lambda conn, now: state.reviews.unclaim(
            conn, escalation_id=escalation_id, reviewer=reviewer_of(principal), now=now
        ),
    )


def assign(
    state: AppState, principal: Principal, escalation_id: str, assignee: str
) -> EscalationState:
    """Hand an escalation to an enabled console user (422 naming them otherwise)."""

    def assigning(conn: Connection, now: datetime) -> EscalationState:
        user = auth_store.find_user(conn, name=assignee)
        if user is None or user.disabled:
            enabled = [u.name for u in auth_store.list_users(conn) if not u.disabled]
            raise InvalidDecision(
                f"{assignee!r} is not an enabled console user; assign to one of: "
                + ", ".join(enabled)
            )
        return state.reviews.assign(
            conn,
            escalation_id=escalation_id,
            assignee=assignee,
            reviewer=reviewer_of(principal),
            now=now,
        )

    return _run(state, assigning)


def _run(state: AppState, operation: Callable[[Connection, datetime], T]) -> T:
    """``operation`` in a transaction of its own; a ReviewError becomes a Problem."""
    try:
        with state.engine.begin() as conn:
            return operation(conn, utcnow())
    except ReviewError as exc:
        raise Problem(
            exc.status, _TITLES.get(exc.status, "Error"), str(exc), **exc.detail
        ) from None


def _publish(state: AppState, rows: OutboxRows) -> None:
    """Send committed events now (without a publisher they wait for the relay)."""
    if state.publisher is not None:
        state.publisher.publish(rows)


_TITLES = {404: "Escalation not found", 409: "Conflict", 422: "Invalid decision"}
