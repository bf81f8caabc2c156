"""POST /api/v1/workflows/{id}/steps/{step}/retry: run a failed step again;
POST /api/v1/workflows/{id}/resume: run a failed workflow again from a step.
(POST /api/v1/workflows/{id}/cancel is in ``workflows.py``.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from review_ui import operations
from review_ui.api.models import WorkflowPublic
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import OPERATE
from review_ui.deps import StateDep
from review_ui.openapi import NO_NUL, PathText, problems
from review_ui.problems import Problem

router = APIRouter(tags=["workflows"])
Operator = Annotated[Principal, Depends(api_roles(OPERATE))]
WorkflowId = PathText
StepName = PathText

REASON = Field(
    min_length=1,
    max_length=500,
    pattern=NO_NUL,
    description="Why (kept in the audit trail with the caller's name).",
)
INPUT = Field(
    None,
    description="The input to run the step on, used exactly as given, instead of its own; "
    "checked against the input schema the capability's live agent workers announced.",
)


class StepRetry(BaseModel):
    """Why the step runs again, and optionally the input to run it on."""

    model_config = ConfigDict(extra="forbid")
    reason: str = REASON
    input: dict[str, Any] | None = INPUT


class WorkflowResume(BaseModel):
    """The step to resume from, why, and optionally the input to run that step on."""

    model_config = ConfigDict(extra="forbid")
    step: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    reason: str = REASON
    input: dict[str, Any] | None = INPUT


_WHY = {
    400: "A body that cannot be read as JSON.",
    409: "The workflow or the step is not in a state the operation applies to: `detail` "
    "says which (e.g. the workflow is completed or cancelled, or the step has not failed).",
    422: "A body that breaks the schema, text that cannot be stored, or an `input` that "
    "breaks the capability's input schema (`errors` lists how).",
}


@router.post(
    "/workflows/{workflow_id}/steps/{step}/retry",
    status_code=202,
    response_model=WorkflowPublic,
    responses=problems(
        400,
        401,
        403,
        404,
        409,
        422,
        429,
        503,
        why={**_WHY, 404: "No such workflow, or no such step in it."},
    ),
)
def retry_step(
    workflow_id: WorkflowId,
    step: StepName,
    body: StepRetry,
    app_state: StateDep,
    principal: Operator,
) -> WorkflowPublic:
    """Run a failed step of a running or failed workflow again: a new attempt with a whole
    retry budget, on its last input or on `input`. A failed workflow runs again (the
    steps its failure cancelled too); results of earlier attempts are ignored. Answers
    with the workflow as it is now; audited with the caller's name and the reason."""
    _no_nul(workflow_id, step)
    state = operations.retry(
        app_state,
        principal,
        workflow_id=workflow_id,
        step=step,
        reason=body.reason,
        task_input=body.input,
    )
    return WorkflowPublic.of(state, app_state.settings.trace_url_template)


@router.post(
    "/workflows/{workflow_id}/resume",
    status_code=202,
    response_model=WorkflowPublic,
    responses=problems(
        400,
        401,
        403,
        404,
        409,
        422,
        429,
        503,
        why={
            **_WHY,
            404: "No such workflow.",
            422: _WHY[422] + " Also a `step` the workflow does not have, or one that would "
            "leave a failed step behind.",
        },
    ),
)
def resume_workflow(
    workflow_id: WorkflowId,
    body: WorkflowResume,
    app_state: StateDep,
    principal: Operator,
) -> WorkflowPublic:
    """Run a failed workflow again from `step`: it and every step after it run again (on
    their mapped inputs, or `step` on `input`), as do the steps the failure cancelled;
    results of earlier attempts are ignored. Answers with the workflow as it is now;
    audited with the caller's name and the reason."""
    _no_nul(workflow_id)
    state = operations.resume(
        app_state,
        principal,
        workflow_id=workflow_id,
        step=body.step,
        reason=body.reason,
        task_input=body.input,
    )
    return WorkflowPublic.of(state, app_state.settings.trace_url_template)


def _no_nul(workflow_id: str, step: str = "") -> None:
    """PostgreSQL text cannot hold NUL, so no stored id or step name contains one."""
    if "\x00" in workflow_id:
        raise Problem(404, "Workflow or step not found", f"no workflow with id {workflow_id!r}")
    if "\x00" in step:
        raise Problem(404, "Workflow or step not found", f"no step {step!r}")
