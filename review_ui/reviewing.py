"""Running reviewer operations for the API and the console alike: one transaction,
ReviewError turned into a problem, events published after commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection

from orchestrator.publishing.outbox import OutboxRows
from orchestrator.reviews import InvalidDecision, Reviewer, ReviewError
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


def assign_to_user(
    state: AppState,
    conn: Connection,
    *,
    escalation_id: str,
    assignee: str,
    principal: Principal,
    now: datetime,
) -> EscalationState:
    """Assign an escalation to an enabled console user (422 naming them otherwise)."""
    user = auth_store.find_user(conn, name=assignee)
    if user is None or user.disabled:
        enabled = [u.name for u in auth_store.list_users(conn) if not u.disabled]
        raise InvalidDecision(
            f"{assignee!r} is not an enabled console user; assign to one of: " + ", ".join(enabled)
        )
    return state.reviews.assign(
        conn,
        escalation_id=escalation_id,
        assignee=assignee,
        reviewer=reviewer_of(principal),
        now=now,
    )


def run_review(
    state: AppState,
    operation: Callable[[Connection, datetime], T],
    publish: Callable[[T], OutboxRows] | None = None,
) -> T:
    """Run ``operation`` in a transaction, then publish the events it queued."""
    try:
        with state.engine.begin() as conn:
            result = operation(conn, utcnow())
    except ReviewError as exc:
        raise Problem(
            exc.status, _TITLES.get(exc.status, "Error"), str(exc), **exc.detail
        ) from None
    if publish is not None and state.publisher is not None:
        state.publisher.publish(publish(result))
    return result


_TITLES = {404: "Escalation not found", 409: "Conflict", 422: "Invalid decision"}
