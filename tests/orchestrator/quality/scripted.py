"""Scripted agent results and reviewer decisions for the decision-quality tests, made
the way production makes them: the applier plans a goal and applies the agent's result
(which escalates when its confidence is low), and reviewers decide through ``Reviews``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.records import Outgoing
from orchestrator.review import DecisionRequest, Reviewer, Reviews
from orchestrator.service.applier import Applier
from orchestrator.store import escalations as escalation_rows
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import TaskSucceeded
from waypost.events import default_codec, new_id
from waypost.topics import Topics

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
GOAL_TYPE = "test.quality"
CAPABILITY = "drafter"
T0 = datetime(2030, 1, 10, 9, 0, tzinfo=UTC)


@dataclass
class Scripted:
    """Results of the ``drafter`` agent and decisions on them, at chosen times."""

    engine: Engine
    namespace: str
    playbooks: PlaybookRegistry = field(default_factory=lambda: PlaybookRegistry.load([PLAYBOOKS]))

    def __post_init__(self) -> None:
        outgoing = Outgoing(Topics(self.namespace), default_codec())
        self.applier = Applier(playbooks=self.playbooks, outgoing=outgoing, random=lambda: 0.5)
        self.reviews = Reviews(PlaybookVersions(self.playbooks), outgoing)

    def result(
        self,
        version: str,
        *,
        at: datetime = T0,
        confidence: float = 0.5,
        text: str = "Dear customer, your refund is on its way.",
        reasoning: tuple[str, ...] = ("the order was paid twice",),
    ) -> str | None:
        """A goal whose draft the agent ``version`` answered at ``at``; the id of the
        escalation it opened (None: confident enough to complete)."""
        workflow_id = new_id()
        goal = NewWorkflow(workflow_id, GOAL_TYPE, {"subject": f"order {workflow_id[:8]}"}, at)
        with self.engine.begin() as conn:
            self.applier.plan_new(conn, goals=[goal], now=at)
        with self.engine.begin() as conn:
            states = workflow_rows.lock(conn, ids=[workflow_id])
            task = states[workflow_id].tasks["draft"]
            answer = TaskSucceeded(
                task.id,
                task.attempt,
                {"text": text},
                confidence=confidence,
                reasoning=reasoning,
                agent={"capability": CAPABILITY, "version": version, "instance": "test:1"},
            )
            applied = self.applier.apply(
                conn, states=states, inputs=[(workflow_id, answer)], now=at
            )
            assert applied.applied == 1, applied.notes
            opened = list(states[workflow_id].escalations)
        return opened[0] if opened else None

    def escalated(self, version: str, count: int, *, at: datetime = T0) -> list[str]:
        """``count`` results of ``version`` that escalated."""
        found = [self.result(version, at=at) for _ in range(count)]
        assert all(found), "a low-confidence result did not escalate"
        return [escalation for escalation in found if escalation is not None]

    def decide(
        self,
        escalation_id: str,
        action: str,
        *,
        reviewer: str = "rita",
        at: datetime = T0,
        output: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """A reviewer's decision on the escalation as it is now."""
        with self.engine.begin() as conn:
            found = escalation_rows.get(conn, escalation_id=escalation_id)
            assert found is not None
            _, escalation = found
            request = DecisionRequest(
                escalation_id,
                action,  # type: ignore[arg-type]
                escalation.version,
                escalation.digest,
                output,
                reason or ("wrong amount" if action == "reject" else None),
            )
            self.reviews.decide(conn, request=request, reviewer=Reviewer(reviewer), now=at)
