"""Running one task's handler: the context it gets, and its local attempts."""

from __future__ import annotations

import logging
import traceback
from datetime import datetime
from typing import Any

import pydantic

from waypost.errors import NonRetryableError
from waypost.events import ErrorInfo, TaskDispatched
from waypost.events.storable import value_problem
from waypost.governance import ApprovalRequired, Governor
from waypost.governance.acting import TaskGovernance
from waypost.memory import AgentMemory
from waypost.runtime.results import Outcome
from waypost.sdk import Agent, AgentContext, Approval, TaskInfo
from waypost.telemetry import NO_TRACING, Tracing
from waypost.tools.governed import Toolbox

log = logging.getLogger(__name__)


def task_context(
    agent: Agent[Any, Any],
    task: TaskDispatched,
    deadline: datetime,
    *,
    resources: dict[type, Any],
    memory: AgentMemory | None,
    governor: Governor | None,
    toolbox: Toolbox | None = None,
    tracing: Tracing = NO_TRACING,
) -> AgentContext:
    """What the handler sees of its task (``ctx``): the task, its resources, the agent's
    memory, with policies the governance its ``ctx.act`` asks, and its MCP tools
    (``ctx.tools``, every call decided through ``ctx.act``)."""
    info = TaskInfo(
        workflow_id=task.workflow_id,
        task_id=task.task_id,
        step=task.step,
        capability=task.capability,
        attempt=task.attempt,
        goal_type=task.goal_type,
        deadline=deadline,
        approvals=tuple(
            Approval(a.action, a.params_digest, a.approved_by, a.escalation_id)
            for a in task.approvals or ()
        ),
    )
    governance = (
        TaskGovernance(
            governor,
            # Today an agent is declared by its capability (docs/governance.md).
            agent=agent.capability,
            capability=task.capability,
            workflow_id=task.workflow_id,
            task_id=task.task_id,
            approvals=info.approvals,
        )
        if governor is not None
        else None
    )
    context = AgentContext(task=info, resources=resources, memory=memory, governance=governance)
    context.tools = (toolbox or Toolbox()).for_task(context.act, context.note, tracing)
    return context


def run_handler(
    agent: Agent[Any, Any], task: TaskDispatched, context: AgentContext, *, attempts: int
) -> Outcome:
    """The handler's result, the approval it waits for, or why it failed (after up to
    ``attempts`` tries in this process for errors that may pass; a cancelled task is
    not tried again)."""
    try:
        task_input = agent.input_model.model_validate(task.input)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        return ErrorInfo(type="InvalidInput", message=problems, retryable=False)
    error: ErrorInfo | None = None
    for attempt in range(1, attempts + 1):
        try:
            result = agent.run(task_input, context)
            problem = value_problem(result.output.model_dump(mode="json"))
            if problem is not None:
                # The same input would produce the same output: do not retry.
                return ErrorInfo(type="InvalidOutput", message=problem, retryable=False)
            return result
        except ApprovalRequired as exc:
            return exc  # not a failure to retry: it waits for a reviewer
        except NonRetryableError as exc:
            return ErrorInfo(type=type(exc).__name__, message=str(exc), retryable=False)
        except Exception as exc:
            if context.cancelled:
                # Its workflow is gone: trying again would be work nobody waits for.
                log.info("%s stopped cancelled task %s: %s", agent.capability, task.task_id, exc)
                return ErrorInfo(type=type(exc).__name__, message=str(exc), retryable=False)
            log.warning(
                "%s failed on task %s (local attempt %d/%d): %s\n%s",
                agent.capability,
                task.task_id,
                attempt,
                attempts,
                exc,
                traceback.format_exc(limit=5),
            )
            error = ErrorInfo(type=type(exc).__name__, message=str(exc), retryable=True)
    assert error is not None
    return error
