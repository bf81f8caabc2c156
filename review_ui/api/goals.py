"""POST /api/v1/goals: accept a goal; the same Idempotency-Key twice makes one workflow."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from orchestrator import goals
from orchestrator.errors import InvalidGoalInput, UnknownGoalType
from orchestrator.store import workflows as workflow_rows
from review_ui.api.models import GoalAcceptedPublic, GoalCreate
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import SUBMIT_GOALS
from review_ui.deps import StateDep
from review_ui.openapi import problems
from review_ui.problems import Problem
from waypost.events import new_id, new_traceparent, utcnow
from waypost.events.storable import value_problem

router = APIRouter(tags=["goals"])

_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@router.post(
    "/goals",
    status_code=202,
    response_model=GoalAcceptedPublic,
    responses={
        202: {
            "headers": {
                "Location": {
                    "description": "The workflow's status URL (as `status_url`).",
                    "required": True,
                    "schema": {"type": "string"},
                }
            }
        },
        **problems(
            400,
            401,
            403,
            409,
            422,
            429,
            503,
            why={
                400: "An Idempotency-Key that breaks its pattern, or a body that cannot "
                "be read as JSON.",
                409: "The Idempotency-Key was used for a different goal.",
                422: "A body that breaks the schema, an unknown goal type (`known` lists "
                "the known ones), input that breaks its playbook's input schema "
                "(`errors`), or input that cannot be stored.",
            },
        ),
    },
)
def submit_goal(
    goal: GoalCreate,
    state: StateDep,
    response: Response,
    _: Annotated[Principal, Depends(api_roles(SUBMIT_GOALS))],
    idempotency_key: Annotated[
        str | None,
        # The pattern is checked below (a 400, not a schema 422), so only documented here.
        Header(
            description="The goal id; repeating it returns the same workflow.",
            json_schema_extra={"pattern": _KEY.pattern},
        ),
    ] = None,
    traceparent: Annotated[
        str | None,
        Header(
            description="W3C trace context of the caller; the goal's trace continues it. "
            "Ignored (a new trace starts) unless it is `00-<32 hex>-<16 hex>-<2 hex>`."
        ),
    ] = None,
) -> GoalAcceptedPublic:
    """Accept a goal; it is planned into a workflow asynchronously.

    Rules the schema cannot state (each a 422): `type` must be one of the playbooks'
    goal types, and `input` must pass that playbook's input schema, contain no NUL
    character and no integer beyond 64 bits."""
    if idempotency_key is not None and not _KEY.match(idempotency_key):
        raise Problem(
            400,
            "Invalid Idempotency-Key",
            "use 1-200 characters from letters, digits, '.', '_', ':' and '-'",
        )
    problem = value_problem(goal.input)
    if problem is not None:
        raise Problem(422, "Invalid goal input", f"the input cannot be stored: {problem}")
    try:
        state.playbooks.check_goal(goal.type, goal.input)
    except UnknownGoalType as exc:
        raise Problem(422, "Unknown goal type", str(exc), known=state.playbooks.types()) from None
    except InvalidGoalInput as exc:
        errors = [{"field": where, "message": message} for where, message in exc.problems]
        raise Problem(422, "Invalid goal input", str(exc), errors=errors) from None
    goal_id = idempotency_key or new_id()
    with state.engine.begin() as connection:
        accepted = goals.submit(
            connection,
            goal=goals.GoalSubmission(
                goal_id=goal_id,
                type=goal.type,
                input=goal.input,
                # The request's span when traced (a child of the caller's traceparent).
                traceparent=state.outgoing.tracing.outgoing(
                    (
                        traceparent
                        if traceparent and _TRACEPARENT.match(traceparent)
                        else new_traceparent(),
                        None,
                    )
                )[0],
            ),
            outgoing=state.outgoing,
            now=utcnow(),
        )
        existing = None if accepted.created else workflow_rows.get(connection, workflow_id=goal_id)
    if existing is not None and (existing.type, dict(existing.input)) != (goal.type, goal.input):
        raise Problem(
            409,
            "Idempotency-Key reused",
            f"goal {goal_id!r} was already submitted with a different type or input",
        )
    if state.publisher is not None:
        # Committed first: a 202 means the goal is durable whatever the broker does next.
        state.publisher.publish(accepted.outbox)
    url = f"/api/v1/workflows/{accepted.workflow_id}"
    response.headers["Location"] = url
    return GoalAcceptedPublic(workflow_id=accepted.workflow_id, status_url=url)
