"""The LLM planner: ask a model for a plan, check it, ask again with the reasons.

``Planner.plan`` runs the conversation for one workflow and says how it ended: a plan
that passed every check (``orchestrator/planning/plans.py``), a failure (every plan
refused, the goal type's token budget spent, a policy denied the model call, the model
refused), or a model that did not answer (to try again later). Each plan asked for is a
``PlanAttempt`` with the prompt sent and the answer, which the caller stores for audit.

When governance policies are configured, each model call is the action ``plan`` of the
agent ``planner`` (capability ``planner``): decided and audited first, and its tokens
and cost added to the planner's budgets afterwards, as an agent's are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from orchestrator.planning.plans import Catalogue, Checked, check_plan, parse_answer
from orchestrator.planning.prompt import first_messages, refused
from orchestrator.playbooks.model import PLANNER, Planning, Playbook
from waypost.governance.acting import propose
from waypost.governance.gate import Governor
from waypost.governance.model import Spend
from waypost.llm import LLMClient, LLMRefused, LLMUnavailable, assistant, completion_request

PLAN_ACTION = "plan"  # the governed action of each model call


@dataclass(frozen=True, slots=True)
class PlanAttempt:
    """One plan asked for: what was sent, what came back, and what the checks said."""

    number: int
    model: str
    prompt: tuple[dict[str, Any], ...]
    answer: str | None
    outcome: Literal["accepted", "refused", "error"]
    problems: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """How planning one workflow ended: ``plan``, ``failure`` or ``unavailable``."""

    attempts: tuple[PlanAttempt, ...] = ()
    plan: Playbook | None = None
    failure: str | None = None  # give up: the workflow fails with this reason
    unavailable: str | None = None  # the model did not answer: try again later
    lost: bool = False  # another orchestrator took the workflow over: leave it to it


@dataclass
class Planner:
    """Plans workflows with one model; thread-compatible (one per planning thread)."""

    llm: LLMClient
    clock: Callable[[], datetime]
    governor: Governor | None = None
    temperature: float | None = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def plan(
        self,
        *,
        workflow_id: str,
        goal: Playbook,
        goal_input: Mapping[str, Any],
        catalogue: Catalogue,
        asked_before: int = 0,
        tokens_before: int = 0,
        keep_claim: Callable[[], bool] = lambda: True,
    ) -> Outcome:
        """Plan one workflow of goal type ``goal``; ``asked_before`` plans and
        ``tokens_before`` tokens were spent on it already (by an earlier try).
        ``keep_claim`` is called before each model call: it renews this orchestrator's
        claim on the workflow, False when another orchestrator holds it now."""
        planning = goal.planning or Planning()
        messages = first_messages(goal, goal_input, catalogue)
        attempts: list[PlanAttempt] = []
        tokens = tokens_before
        number = asked_before
        last: tuple[str, ...] = ()
        while number < planning.attempts:
            budget = planning.budget_tokens
            if budget is not None and tokens >= budget:
                return Outcome(
                    tuple(attempts),
                    failure=f"the planner's budget of {budget} tokens for this workflow is "
                    f"spent ({tokens} used over {number} plan(s))",
                )
            denied = self._denied(workflow_id, goal)
            if denied is not None:
                return Outcome(tuple(attempts), failure=denied)
            if not keep_claim():
                return Outcome(tuple(attempts), lost=True)
            number += 1
            body = completion_request(
                self.llm.settings.model,
                messages,
                temperature=self.temperature,
                json_output=True,
                extra=self.extra,
            )
            prompt = tuple(body["messages"])
            try:
                turn = self.llm.complete(body, ctx=None)
            except LLMUnavailable as exc:
                return Outcome(tuple(attempts), unavailable=str(exc))
            except LLMRefused as exc:
                attempts.append(self._attempt(number, prompt, None, "error", (str(exc),)))
                return Outcome(tuple(attempts), failure=f"the model refused: {exc}")
            used = turn.input_tokens + turn.output_tokens
            tokens += used
            if self.governor is not None and (used or turn.cost_usd):
                self.governor.record_usage(
                    agent=PLANNER,
                    capability=PLANNER,
                    workflow_id=workflow_id,
                    spend=Spend(used, turn.cost_usd),
                )
            answer = turn.text or ""
            value, error = parse_answer(answer)
            checked = (
                Checked(None, (error,))
                if error is not None
                else check_plan(goal, value, goal_input=goal_input, catalogue=catalogue)
            )
            outcome: Literal["accepted", "refused"] = (
                "accepted" if checked.playbook is not None else "refused"
            )
            attempts.append(
                PlanAttempt(
                    number,
                    turn.model,
                    prompt,
                    answer,
                    outcome,
                    checked.problems,
                    turn.input_tokens,
                    turn.output_tokens,
                    turn.cost_usd,
                    self.clock(),
                )
            )
            if checked.playbook is not None:
                return Outcome(tuple(attempts), plan=checked.playbook)
            last = checked.problems
            messages = [*messages, assistant(answer), refused(checked.problems)]
        because = "; ".join(last) if last else "see the plan attempts"
        return Outcome(
            tuple(attempts),
            failure=f"{number} plan(s) asked for and none passed the checks; the last "
            f"was refused because: {because}",
        )

    def _denied(self, workflow_id: str, goal: Playbook) -> str | None:
        """Why governance does not let the planner call its model now (None: it may)."""
        if self.governor is None:
            return None
        decision = self.governor.decide(
            propose(
                PLAN_ACTION,
                {"goal_type": goal.type},
                agent=PLANNER,
                capability=PLANNER,
                workflow_id=workflow_id,
            )
        )
        if decision.allowed:
            return None
        if decision.outcome == "require_approval":
            return (
                f"a policy holds the planner's model call for approval ({decision.reason}); "
                "planning is approved per plan with planning.requires_approval instead"
            )
        return f"governance denied the planner's model call: {decision.reason}"

    def _attempt(
        self,
        number: int,
        prompt: tuple[dict[str, Any], ...],
        answer: str | None,
        outcome: Literal["accepted", "refused", "error"],
        problems: tuple[str, ...],
    ) -> PlanAttempt:
        return PlanAttempt(
            number,
            self.llm.settings.model,
            prompt,
            answer,
            outcome,
            problems,
            0,
            0,
            0.0,
            self.clock(),
        )
