"""Reviewer rules (pure): when a result must wait for a person, and whether a reviewer may
decide, comment on, claim or give back an escalation.

Every rule answers with a typed verdict: ``None`` (allowed) or a ``Refusal`` whose message,
worded once here, says what to do. The rules are asked when a reviewer acts
(``orchestrator/review.py``, with the escalation's workflow locked) and again when the
orchestrator applies a decision (``resolution.review_input``), so both refuse the same
things in the same words. No SQL, no HTTP: the adapters turn a refusal into a 409 (a
``conflict``: the escalation is not as the reviewer saw it, or someone else holds it)
or a 422 (the request itself is wrong).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.playbooks.model import Step
from orchestrator.workflow.four_eyes import approvers
from orchestrator.workflow.messages import TaskSucceeded
from orchestrator.workflow.state import EscalationState, EscalationStatus, TaskState

Action = Literal["approve", "edit", "reject", "retry"]
ACTIONS: tuple[Action, ...] = ("approve", "edit", "reject", "retry")
# The kind of the escalation that asks a person for a step's output after every attempt
# failed (the human fallback): there is no output to approve.
FALLBACK = "fallback"
FALLBACK_ACTIONS: tuple[Action, ...] = ("edit", "retry", "reject")
# The kind of the escalation that asks a person to approve an action a governance policy
# holds for approval (``approvals``): approving runs the step again with the approval;
# there is no output to edit.
POLICY_APPROVAL = "policy_approval"
POLICY_APPROVAL_ACTIONS: tuple[Action, ...] = ("approve", "retry", "reject")
# Kinds whose retry grants the step attempts of its own (a whole new budget, or one more
# for the approved action); any other retry spends one of the step's attempts.
_RETRY_GRANTS_ATTEMPTS = (FALLBACK, POLICY_APPROVAL)


@dataclass(frozen=True, slots=True)
class Reviewer:
    """Who acts, and whether they may act on escalations someone else holds."""

    name: str
    may_override: bool = False  # admins may decide escalations claimed by others


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """A decision as the reviewer submitted it, bound to what they saw."""

    escalation_id: str
    action: Action
    version: int
    digest: str
    output: Mapping[str, Any] | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reviewer's request is refused, in the words the reviewer reads.

    ``conflict``: the escalation is not as the reviewer saw it, or someone else holds it
    (look again); otherwise the request itself is wrong (fix it). ``detail`` holds what
    the reviewer needs to act on it (the current version, who holds it, the fields an
    edit got wrong)."""

    message: str
    conflict: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)


def review_needed(step: Step, result: TaskSucceeded) -> tuple[str, str] | None:
    """(kind, reason) when a result must wait for a reviewer, else None."""
    kinds: list[str] = []
    reasons: list[str] = []
    if result.escalate:
        kinds.append("agent_request")
        reasons.append(f"the agent asked for a human: {result.escalate}")
    if step.escalate_below is not None and result.confidence < step.escalate_below:
        kinds.append("low_confidence")
        reasons.append(
            f"confidence {result.confidence:.2f} is below the step's threshold "
            f"{step.escalate_below:.2f}"
        )
    if step.requires_approval:
        kinds.append("approval")
        reasons.append("the step requires a reviewer's approval")
    return (kinds[0], "; ".join(reasons)) if kinds else None


# --- the verdicts -----------------------------------------------------------------------


def refuse_decision(
    escalation: EscalationState,
    task: TaskState,
    step: Step | None,
    request: DecisionRequest,
    reviewer: Reviewer,
) -> Refusal | None:
    """May ``reviewer`` make this decision now? ``step`` is the step as the playbook
    version that planned the workflow has it (None: that version is gone)."""
    return (
        refuse_stale(escalation, request.version, request.digest)
        or refuse_held(escalation, reviewer)
        or refuse_repeated_approval(escalation, request.action, reviewer)
        or refuse_action(escalation, task, step, request.action, request.output, request.reason)
    )


def refuse_repeated_approval(
    escalation: EscalationState, action: str, reviewer: Reviewer
) -> Refusal | None:
    """Four eyes (``four_eyes.py``): a reviewer who approved the output awaiting approval,
    or edited it, cannot approve it again; another reviewer must. Editing it again is
    allowed (the new edit needs the others' approval)."""
    if action != "approve" or reviewer.name not in approvers(escalation):
        return None
    given, required = len(escalation.approvals), escalation.required_approvals
    mine = next(a for a in escalation.approvals if a.reviewer == reviewer.name)
    already = (
        "your edit counts as your approval" if mine.action == "edit" else "you approved it already"
    )
    who = "a second reviewer" if given == 1 else "another reviewer"
    return Refusal(
        f"{already}; {who} must approve it ({given} of {required} approvals given)",
        conflict=True,
        detail={"approvals": given, "required_approvals": required},
    )


def refuse_comment(escalation: EscalationState, *, text: str, version: int) -> Refusal | None:
    """May a comment be added? Any status will do (a comment changes nothing but the
    record), but it must be about the version the commenter saw."""
    if not text.strip():
        return Refusal("a comment needs some text")
    if version != escalation.version:
        return _changed(escalation, version)
    return None


def refuse_claim(escalation: EscalationState, reviewer: Reviewer) -> Refusal | None:
    """May ``reviewer`` take the escalation, or give it back? Only while it is pending,
    and not from someone else (admins excepted)."""
    return refuse_closed(escalation) or refuse_held(escalation, reviewer)


def refuse_closed(escalation: EscalationState) -> Refusal | None:
    """Refused unless the escalation still waits for a decision."""
    if escalation.status is EscalationStatus.PENDING:
        return None
    decision = escalation.decision
    if decision is not None:
        message = (
            f"already decided: {decision.action} by {decision.reviewer} at "
            f"{decision.decided_at.isoformat(timespec='seconds')}"
        )
    else:
        message = f"the escalation is {escalation.status.value}; nothing is waiting for a decision"
    return Refusal(message, conflict=True, detail={"escalation_status": escalation.status.value})


def refuse_stale(escalation: EscalationState, version: int, digest: str) -> Refusal | None:
    """Refused unless the escalation is pending at the version and digest the reviewer
    saw."""
    closed = refuse_closed(escalation)
    if closed is not None:
        return closed
    if version != escalation.version:
        return _changed(escalation, version)
    if digest != escalation.digest:
        return Refusal(
            f"the escalation shows other content than you saw (you saw digest {digest[:12]}, "
            f"it shows {escalation.digest[:12]}); reload it and look again",
            conflict=True,
            detail={"version": escalation.version},
        )
    return None


def refuse_held(escalation: EscalationState, reviewer: Reviewer) -> Refusal | None:
    """Refused when someone else holds the escalation (admins may override)."""
    if escalation.assignee in (None, reviewer.name) or reviewer.may_override:
        return None
    return Refusal(
        f"claimed by {escalation.assignee}; ask them or an admin to reassign it",
        conflict=True,
        detail={"assignee": escalation.assignee},
    )


def refuse_action(
    escalation: EscalationState,
    task: TaskState,
    step: Step | None,
    action: str,
    output: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> Refusal | None:
    """Is the decision itself complete and allowed for this kind of escalation? A known
    action the kind allows, a reason to reject, an edit that matches the step's output
    schema, and an attempt left to retry."""
    if action not in ACTIONS:
        return Refusal(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    if escalation.kind == FALLBACK and action not in FALLBACK_ACTIONS:
        return Refusal(
            f"every attempt of step {escalation.step!r} failed, so there is no output to "
            "approve; edit (supply the output), retry or reject"
        )
    if escalation.kind == POLICY_APPROVAL and action not in POLICY_APPROVAL_ACTIONS:
        return Refusal(
            f"step {escalation.step!r} waits for the approval of an action, so there is no "
            "output to edit; approve the action, retry the step or reject it"
        )
    if action == "reject" and not (reason or "").strip():
        return Refusal("a rejection needs a reason")
    if action == "retry":
        return refuse_retry(escalation, task)
    if action == "edit":
        return _refuse_edit(step, output)
    return None


def refuse_retry(escalation: EscalationState, task: TaskState) -> Refusal | None:
    """A retry spends one of the step's attempts: refused when none is left (after the
    human fallback, or for an approved action, the step gets attempts of its own)."""
    if escalation.kind in _RETRY_GRANTS_ATTEMPTS or task.attempt < task.max_attempts:
        return None
    used = (
        "its only attempt" if task.max_attempts == 1 else f"all {task.max_attempts} of its attempts"
    )
    return Refusal(
        f"step {task.step!r} has used {used}, so it cannot be retried; approve, edit or "
        "reject the result",
        detail={"attempt": task.attempt, "max_attempts": task.max_attempts},
    )


def _refuse_edit(step: Step | None, output: Mapping[str, Any] | None) -> Refusal | None:
    if output is None:
        return Refusal("an edit needs the edited output")
    if step is None:
        return Refusal(
            "the playbook version that planned this workflow is gone, so the edit cannot "
            "be checked against the step's output schema"
        )
    problems = step.output_problems(output)
    if not problems:
        return None
    return Refusal(
        "the edited output breaks the step's output schema: "
        + "; ".join(f"{where}: {message}" for where, message in problems),
        detail={"errors": [{"field": where, "message": message} for where, message in problems]},
    )


def _changed(escalation: EscalationState, version: int) -> Refusal:
    return Refusal(
        f"the escalation changed since you saw it (you saw version {version}, it is at "
        f"version {escalation.version}); reload it and look again",
        conflict=True,
        detail={"version": escalation.version},
    )
