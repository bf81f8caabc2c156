"""What the A2A handler does to Waypost, as blocking calls on the app's engine (the
handler runs them in worker threads): submit a goal, read a workflow, cancel one. The
SQL is the orchestrator's store and goal intake, as the JSON API uses them."""

from __future__ import annotations

from orchestrator import goals
from orchestrator.review import CancelRequest
from orchestrator.store import workflows as workflow_rows
from orchestrator.workflow.state import WorkflowState
from review_ui.a2a.errors import InvalidParamsError
from review_ui.a2a.messages import GoalMessage
from review_ui.deps import AppState
from waypost.events import new_traceparent, utcnow

SOURCE = "waypost/a2a"  # the goal.submitted event's ce_source


def submit(state: AppState, goal: GoalMessage) -> WorkflowState:
    """Accept the goal (once per goal id) and publish its event; the workflow as stored.
    InvalidParamsError if the goal id was used for another goal type or input."""
    with state.engine.begin() as connection:
        accepted = goals.submit(
            connection,
            goal=goals.GoalSubmission(
                goal_id=goal.goal_id,
                type=goal.type,
                input=goal.input,
                traceparent=state.outgoing.tracing.outgoing((new_traceparent(), None))[0],
                source=SOURCE,
            ),
            outgoing=state.outgoing,
            now=utcnow(),
        )
        workflow = workflow_rows.get(connection, workflow_id=accepted.workflow_id)
    assert workflow is not None  # inserted or found in this transaction
    if not accepted.created and (workflow.type, dict(workflow.input)) != (goal.type, goal.input):
        raise InvalidParamsError(
            f"message id {goal.goal_id.removeprefix('a2a:')!r} was already sent with "
            "another skill or input; give a new message a new messageId"
        )
    if state.publisher is not None:
        # Committed first: the goal is durable whatever the broker does next.
        state.publisher.publish(accepted.outbox)
    return workflow


def read(state: AppState, workflow_id: str) -> WorkflowState | None:
    """The workflow with this id, or None."""
    if "\x00" in workflow_id:  # PostgreSQL text cannot hold NUL: no stored id has one
        return None
    with state.engine.begin() as connection:
        return workflow_rows.get(connection, workflow_id=workflow_id)


def cancel(state: AppState, workflow_id: str, request: CancelRequest) -> WorkflowState:
    """Cancel the workflow as the JSON API does (audited as ``request.actor``) and
    publish its ``workflow.cancelled``; CancelError (404, 409) if it cannot be."""
    with state.engine.begin() as connection:
        cancelled = state.reviews.cancel(
            connection, workflow_id=workflow_id, request=request, now=utcnow()
        )
    if state.publisher is not None:
        state.publisher.publish(cancelled.outbox)
    return cancelled.state
