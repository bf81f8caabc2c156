"""Operations on workflows over HTTP, for the JSON API and the console alike: retry a
failed step, resume a failed workflow from a step, cancel a workflow. Each runs in its own
transaction as the principal (audited with their name); a refusal becomes a ``Problem``
(404, 409 or 422 with the rules' message); the events it queued (dispatches, the
cancellation) are published once the transaction committed, or by the relay if the broker
cannot take them now."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from orchestrator.errors import CancelError
from orchestrator.operations import Operated, OperationError, OperationRequest, WorkflowOperations
from orchestrator.publishing.outbox import OutboxRows
from orchestrator.review import CancelRequest
from orchestrator.workflow.state import WorkflowState
from review_ui.auth.principal import Principal
from review_ui.deps import AppState
from review_ui.problems import Problem
from waypost.events import utcnow

_TITLES = {
    404: "Workflow or step not found",
    409: "Not possible in the workflow's state",
    422: "Invalid request",
}
_CANCEL_TITLES = {404: "Workflow not found", 409: "Workflow already finished"}


def operations(state: AppState) -> WorkflowOperations:
    """The operations on the app's playbooks, publishing as the app does."""
    return WorkflowOperations(state.reviews.versions, state.outgoing)


def retry(
    state: AppState,
    principal: Principal,
    *,
    workflow_id: str,
    step: str,
    reason: str,
    task_input: Mapping[str, Any] | None = None,
) -> WorkflowState:
    """Run a failed step again, on its last input or ``task_input``."""
    request = OperationRequest(workflow_id, step, principal.name, reason, task_input)
    return _run(
        state, lambda conn, now: operations(state).retry(conn, request=request, now=now)
    ).state


def resume(
    state: AppState,
    principal: Principal,
    *,
    workflow_id: str,
    step: str,
    reason: str,
    task_input: Mapping[str, Any] | None = None,
) -> WorkflowState:
    """Run a failed workflow again from ``step``, on its mapped input or ``task_input``."""
    request = OperationRequest(workflow_id, step, principal.name, reason, task_input)
    return _run(
        state, lambda conn, now: operations(state).resume(conn, request=request, now=now)
    ).state


def cancel(
    state: AppState, principal: Principal, *, workflow_id: str, reason: str
) -> WorkflowState:
    """Cancel a workflow that has not finished."""
    request = CancelRequest(actor=principal.name, reason=reason)
    try:
        with state.engine.begin() as conn:
            cancelled = state.reviews.cancel(
                conn, workflow_id=workflow_id, request=request, now=utcnow()
            )
    except CancelError as exc:
        raise Problem(exc.status, _CANCEL_TITLES.get(exc.status, "Error"), str(exc)) from None
    _publish(state, cancelled.outbox)
    return cancelled.state


def _run(state: AppState, operation: Callable[[Connection, datetime], Operated]) -> Operated:
    """``operation`` in a transaction of its own, its events published after commit."""
    try:
        with state.engine.begin() as conn:
            done = operation(conn, utcnow())
    except OperationError as exc:
        # The problem document's members are declared (review_ui/openapi.py): only the
        # schema errors of an input go with the message.
        errors = {"errors": exc.detail["errors"]} if "errors" in exc.detail else {}
        title = _TITLES.get(exc.status, "Error")
        raise Problem(exc.status, title, str(exc), **errors) from None
    _publish(state, done.outbox)
    return done


def _publish(state: AppState, rows: OutboxRows) -> None:
    """Send committed events now (without a publisher they wait for the relay)."""
    if state.publisher is not None:
        state.publisher.publish(rows)
