"""Operating a workflow by hand on the store: retry a failed step, resume a failed workflow
from a step (cancelling is ``Reviews.cancel`` in ``orchestrator/review.py``).

A thin adapter around the pure rules (``orchestrator/workflow/operations.py``), shaped like
cancelling: it locks the workflow row first (as the orchestrator does before it changes a
workflow, so an operator, the intake, the reconciler and reviewers never interleave),
checks an edited input against its capability's input schema (the one a live agent
worker announced, from the capability catalogue), asks the rules through the state
machine (whose dispatches pass the capabilities' circuit breakers), and writes in the
caller's transaction the workflow, an audit row and the dispatches in the outbox (the
caller publishes them once committed; the relay does if the broker is down). A
refusal becomes an ``OperationError``: 404 (no such workflow or step), 409 (the workflow
or step is not in a state the operation applies to) or 422 (the request is wrong).

# The errors of this module belong in orchestrator/errors.py's tree (OperationError
# beside CancelError); they live here while that file is being changed by others.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import jsonschema_rs
from sqlalchemy import Connection

from orchestrator.errors import OrchestratorError
from orchestrator.planning import catalogue
from orchestrator.playbooks.model import Playbook
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.outbox import OutboxRows
from orchestrator.publishing.records import Outgoing
from orchestrator.store import audit, outbox
from orchestrator.store import breakers as breaker_rows
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.workflow.breaker import BreakerPolicy, CircuitBook
from orchestrator.workflow.machine import Environment, decide
from orchestrator.workflow.messages import ResumeRequested, RetryRequested
from orchestrator.workflow.operations import Refused, refuse_resume, refuse_retry
from orchestrator.workflow.state import WorkflowState
from waypost.events.storable import value_problem
from waypost.yamlfile import field_path

__all__ = [
    "InvalidOperation",
    "Operated",
    "OperationConflict",
    "OperationError",
    "OperationNotFound",
    "OperationRequest",
    "WorkflowOperations",
]

Action = Literal["retry_step", "resume"]  # as the audit trail names them
RETRY: Action = "retry_step"
RESUME: Action = "resume"


class OperationError(OrchestratorError):
    """An operation on a workflow that cannot be carried out; ``status`` is its HTTP
    status and ``detail`` what the operator needs to act on it."""

    status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class OperationNotFound(OperationError):
    """No such workflow, or no such step in it."""

    status = 404


class OperationConflict(OperationError):
    """The workflow or the step is not in a state the operation applies to."""

    status = 409


class InvalidOperation(OperationError):
    """The request itself is wrong (an input that breaks the schema, a step to resume
    from that would leave a failed step behind)."""

    status = 422


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """Who asks for a step of a workflow to run again, and why; ``input``: the input to
    run it on instead of its own (its last one for a retry, its mapped one for a resume)."""

    workflow_id: str
    step: str
    actor: str
    reason: str
    input: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Operated:
    """A workflow as an operation left it; ``outbox`` holds its dispatches, to publish
    after commit."""

    state: WorkflowState
    outbox: OutboxRows


@dataclass
class WorkflowOperations:
    """Operations on workflows, on the store. ``breakers``: the circuit breakers' policy
    the circuits are read with."""

    versions: PlaybookVersions
    outgoing: Outgoing
    breakers: BreakerPolicy = field(default_factory=BreakerPolicy)
    random: Callable[[], float] = random.random

    def retry(self, conn: Connection, *, request: OperationRequest, now: datetime) -> Operated:
        """Run a failed step again (a new attempt, a whole retry budget), on its last or
        an edited input; a failed workflow runs again. OperationError says why not."""
        return self._operate(conn, request, now, RETRY)

    def resume(self, conn: Connection, *, request: OperationRequest, now: datetime) -> Operated:
        """Run a failed workflow again from a step, on its mapped or an edited input.
        OperationError says why not."""
        return self._operate(conn, request, now, RESUME)

    def _operate(
        self,
        conn: Connection,
        request: OperationRequest,
        now: datetime,
        action: Action,
    ) -> Operated:
        _check_storable(reason=request.reason, input=request.input)
        state = workflow_rows.lock(conn, ids=[request.workflow_id]).get(request.workflow_id)
        if state is None:
            raise OperationNotFound(f"no workflow with id {request.workflow_id!r}")
        playbook = self.versions.for_state(conn, state)
        problems = self._input_problems(conn, playbook, request)
        event: RetryRequested | ResumeRequested
        if action == RETRY:
            event = RetryRequested(
                request.step, request.actor, request.reason, request.input, problems
            )
            _raise(refuse_retry(state, event, playbook), unknown_step_status=404)
        else:
            event = ResumeRequested(
                request.step, request.actor, request.reason, request.input, problems
            )
            _raise(refuse_resume(state, event, playbook), unknown_step_status=422)
        assert playbook is not None  # refused otherwise
        # The dispatches ask the circuits for admission as the orchestrator's do: a task
        # whose circuit is open goes to its fallback or waits. The rows are only read:
        # when an admission would start a half-open probe, this dispatch goes unrecorded
        # as the probe and the orchestrator keeps probing as before (the HTTP app may not
        # use the orchestrator service's ``Breakers``, which would store it).
        stored = breaker_rows.read(conn, capabilities=sorted(playbook.capabilities))
        book = CircuitBook.of(self.breakers, stored.values())
        environment = Environment(
            playbook=playbook,
            now=now,
            random=self.random,
            topics=self.outgoing.topics,
            circuits=book,
        )
        decision = decide(state, event, environment)
        assert decision.applied, decision.note  # the rules were asked above
        workflow_rows.save(
            conn, before={state.id: state}, after={state.id: decision.state}, now=now
        )
        detail = {
            "step": request.step,
            "reason": request.reason,
            "was": str(state.status),
            "input": dict(request.input) if request.input is not None else None,
        }
        audit.record(
            conn,
            entries=[
                AuditEntry(
                    actor=request.actor,
                    action=action,
                    workflow_id=state.id,
                    detail={k: v for k, v in detail.items() if v is not None},
                    at=now,
                )
            ],
        )
        records = self.outgoing.for_commands(decision.state, decision.commands)
        self.outgoing.trace_commands(decision.state, decision.commands)
        rows = list(zip(outbox.enqueue(conn, records=records), records, strict=True))
        return Operated(decision.state, rows)

    def _input_problems(
        self, conn: Connection, playbook: Playbook | None, request: OperationRequest
    ) -> tuple[tuple[str, str], ...]:
        """How an edited input breaks the input schema its step's capability announced
        (nothing to check when no live worker announced one)."""
        if request.input is None or playbook is None or not isinstance(request.input, Mapping):
            return ()
        try:
            capability = playbook.step(request.step).capability
        except KeyError:
            return ()  # the rules refuse an unknown step
        known = catalogue.load(conn, self.versions.registry).get(capability)
        if known is None or not known.input_schema:
            return ()
        try:
            validator = jsonschema_rs.validator_for(dict(known.input_schema))
        except (ValueError, jsonschema_rs.ValidationError):
            return ()  # a worker announced a schema that is not one: nothing to check against
        return tuple(
            (field_path(error.instance_path), error.message)
            for error in validator.iter_errors(dict(request.input))
        )


def _raise(refused: Refused | None, *, unknown_step_status: int) -> None:
    """Raise the error a refusal of the rules stands for; an unknown step is 404 when the
    step is in the URL, 422 when it is in the request's body."""
    if refused is None:
        return
    error: type[OperationError]
    if refused.kind == "unknown_step":
        error = OperationNotFound if unknown_step_status == 404 else InvalidOperation
    elif refused.kind == "conflict":
        error = OperationConflict
    else:
        error = InvalidOperation
    raise error(refused.message, **refused.detail)


def _check_storable(**values: Any) -> None:
    """422 for operator input the database or the event cannot hold."""
    for name, value in values.items():
        problem = value_problem(value) if value is not None else None
        if problem is not None:
            raise InvalidOperation(f"the {name} cannot be stored: {problem}")
