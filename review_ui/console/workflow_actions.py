"""The workflow page's actions: cancel a workflow, retry a failed step, resume a failed
workflow from a step (admins: ``Operator``).

Each form (``_workflow_actions.html``) carries a reason and a ticked "I understand"
checkbox, and runs the operation the JSON API runs too (``review_ui/operations.py``),
audited with the operator's name. Success answers 303 back to the workflow page with a
notice; a refusal (409: the workflow or step is not in a state for it; 422: the form is
wrong) shows the form again on a page of its own, with what the operator sent and why it
was refused. An unknown workflow is the console's 404 page.

An input box shows the step's last input: left as shown (or emptied), the step runs on
its own input; changed, on exactly the JSON written there. The resume form's box shows
the input of the step it was rendered for (``input_step``): an input changed there but
sent with another step chosen is refused with that step's own input shown instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from orchestrator.store import workflows as workflow_rows
from orchestrator.workflow.state import WorkflowState
from review_ui import operations
from review_ui.auth.principal import Principal
from review_ui.console.common import NUL_MESSAGE, Operator, frame, has_nul, see_other
from review_ui.console.render import pages, pretty_json
from review_ui.deps import AppState, StateDep
from review_ui.problems import Problem

router = APIRouter(include_in_schema=False)
Reason = Annotated[str, Form(max_length=4000)]
InputText = Annotated[str, Form(alias="input", max_length=1_000_000)]
Short = Annotated[str, Form(max_length=200)]
Action = Literal["cancel", "retry", "resume"]

CONFIRMED = "yes"
TITLES = {
    "cancel": "Cancel the workflow",
    "retry": "Retry a failed step",
    "resume": "Resume the workflow from a step",
}
NOTICES = {"cancel": "cancelled", "retry": "retried", "resume": "resumed"}


class Refused(Exception):
    """A form to show again: ``status`` 409 or 422, why, and the schema errors if any."""

    def __init__(self, status: int, message: str, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


@router.post("/workflows/{workflow_id}/cancel")
def cancel(
    workflow_id: str,
    request: Request,
    state: StateDep,
    principal: Operator,
    reason: Reason = "",
    confirm: Short = "",
) -> Response:
    """Cancel the workflow (it has not finished)."""
    workflow = _workflow(state, workflow_id)
    form = _form("cancel", reason=reason)
    try:
        _check(reason, confirm)
        _run(lambda: operations.cancel(state, principal, workflow_id=workflow.id, reason=reason))
    except Refused as refused:
        return _show_again(request, state, principal, workflow.id, form, refused)
    return _done(workflow.id, "cancel")


@router.post("/workflows/{workflow_id}/steps/{step}/retry")
def retry(
    workflow_id: str,
    step: str,
    request: Request,
    state: StateDep,
    principal: Operator,
    reason: Reason = "",
    input_text: InputText = "",
    confirm: Short = "",
) -> Response:
    """Run a failed step again, on its last input or the one written in the form."""
    workflow = _workflow(state, workflow_id)
    form = _form("retry", reason=reason, step=step, input=input_text)
    try:
        _check(reason, confirm, input_text, step)
        task = workflow.tasks.get(step)
        edited = _edited(input_text, task.input if task is not None else None)
        _run(
            lambda: operations.retry(
                state,
                principal,
                workflow_id=workflow.id,
                step=step,
                reason=reason,
                task_input=edited,
            )
        )
    except Refused as refused:
        return _show_again(request, state, principal, workflow.id, form, refused)
    return _done(workflow.id, "retry")


@router.post("/workflows/{workflow_id}/resume")
def resume(
    workflow_id: str,
    request: Request,
    state: StateDep,
    principal: Operator,
    step: Short = "",
    reason: Reason = "",
    input_text: InputText = "",
    input_step: Short = "",
    confirm: Short = "",
) -> Response:
    """Run a failed workflow again from the chosen step."""
    workflow = _workflow(state, workflow_id)
    form = _form(
        "resume", reason=reason, step=step, input=input_text, input_step=input_step or step
    )
    try:
        _check(reason, confirm, input_text, step, input_step)
        if not step:
            raise Refused(422, "Choose the step to resume from.")
        edited = _resume_input(workflow, step, input_text, input_step or step)
        _run(
            lambda: operations.resume(
                state,
                principal,
                workflow_id=workflow.id,
                step=step,
                reason=reason,
                task_input=edited,
            )
        )
    except Refused as refused:
        if refused.status == 422 and step in workflow.tasks and (input_step or step) != step:
            # Show the chosen step's own input, so the operator edits the right one.
            form = _form("resume", reason=reason, step=step, input=None, input_step=step)
        return _show_again(request, state, principal, workflow.id, form, refused)
    return _done(workflow.id, "resume")


def _workflow(state: AppState, workflow_id: str) -> WorkflowState:
    """The workflow, or the console's 404 page."""
    found = None
    if not has_nul(workflow_id):
        with state.engine.connect() as conn:
            found = workflow_rows.get(conn, workflow_id=workflow_id)
    if found is None:
        raise Problem(404, "Workflow not found", f"no workflow with id {workflow_id!r}")
    return found


def _form(action: Action, **values: Any) -> dict[str, Any]:
    """The form as sent, every field present (the templates read each)."""
    return {"action": action, "reason": "", "step": "", "input": None, "input_step": "", **values}


def _check(reason: str, confirm: str, *texts: str) -> None:
    if has_nul(reason, *texts):
        raise Refused(422, NUL_MESSAGE)
    if not reason.strip():
        raise Refused(422, "Give a reason: it is kept in the audit trail.")
    if len(reason) > 500:
        raise Refused(422, "Keep the reason to 500 characters.")
    if confirm != CONFIRMED:
        raise Refused(422, "Tick “I understand” to confirm.")


def _parse(text: str) -> dict[str, Any]:
    """The input written in the form, as a JSON object."""

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise Refused(
            422, f"The input is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except ValueError as exc:
        raise Refused(422, f"The input is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise Refused(422, "The input must be a JSON object ({...}).")
    return value


def _edited(text: str, shown: Any) -> dict[str, Any] | None:
    """The input to run the step on: None when the box was emptied or left as shown."""
    if not text.strip():
        return None
    value = _parse(text)
    return None if value == shown else value


def _resume_input(
    workflow: WorkflowState, step: str, text: str, input_step: str
) -> dict[str, Any] | None:
    """The edited input to resume ``step`` on, if the box was changed for it."""
    shown_task = workflow.tasks.get(input_step)
    edited = _edited(text, shown_task.input if shown_task is not None else None)
    if edited is None or input_step == step or step not in workflow.tasks:
        return edited
    raise Refused(
        422,
        f"The input you changed was shown for step “{input_step}”, but you chose to resume "
        f"from “{step}”. Its own last input is shown now: check it and confirm again.",
    )


def _run(operation: Callable[[], object]) -> None:
    """Carry out the operation; a 409 or 422 becomes a form shown again."""
    try:
        operation()
    except Problem as problem:
        if problem.status not in (409, 422):
            raise
        errors = tuple(
            f"{e.get('field', '?')}: {e.get('message', '')}"
            for e in problem.extra.get("errors", ())
            if isinstance(e, dict)
        )
        raise Refused(problem.status, problem.detail, errors) from None


def _done(workflow_id: str, action: Action) -> Response:
    return see_other(f"/workflows/{quote(workflow_id, safe='')}?notice={NOTICES[action]}")


def _show_again(
    request: Request,
    state: AppState,
    principal: Principal,
    workflow_id: str,
    form: dict[str, Any],
    refused: Refused,
) -> Response:
    """The refused form again, on the workflow as it is now."""
    workflow = _workflow(state, workflow_id)
    if form["input"] is None and form["action"] != "cancel":
        task = workflow.tasks.get(form["input_step"] or form["step"])
        form["input"] = pretty_json(task.input) if task is not None and task.input else ""
    context = frame(
        principal,
        workflow=workflow,
        form=form,
        error=refused.message,
        errors=refused.errors,
        title=TITLES[form["action"]],
    )
    return pages().render(
        request, "workflow_action.html", context, status=refused.status, block="main"
    )
