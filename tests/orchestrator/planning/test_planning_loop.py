"""The LLM planner's thread on the real PostgreSQL, asking a scripted OpenAI-compatible
model over real HTTP: a valid plan runs, refused plans are asked for again with the
reasons, the workflow fails when planning gives up, a model that is down leaves the
workflow planning, plans wait for a reviewer when the goal type says so, and the model
calls are governed and audited.

Events go out through the in-memory bus (our fake of the broker interface), so each test
reads back exactly what the planner's decisions published."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from orchestrator.errors import InvalidDecision
from orchestrator.planning import catalogue, store
from orchestrator.planning.planner import Planner
from orchestrator.planning.service import PlanningLoop
from orchestrator.planning.tables import plan_attempts, planner_claims
from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.review import DecisionRequest, Reviewer, Reviews
from orchestrator.service.applier import Applier
from orchestrator.store import audit
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.tables import escalations, playbook_versions
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import DecisionMade
from orchestrator.workflow.state import TaskStatus, WorkflowState, WorkflowStatus
from tests.support.chat_model import ChatModel, chat_model
from waypost.bus.memory import MemoryBus
from waypost.events import TaskDispatched, default_codec
from waypost.governance import Gate, PolicySet
from waypost.llm import LLMClient, LLMSettings
from waypost.settings import OrchestratorSettings
from waypost.topics import Topics

pytestmark = pytest.mark.integration

T0 = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)

GOAL_TYPE = """\
type: adhoc.help
description: Answer whatever a customer asks
planner: llm
planning:
  instructions: Classify the request before you answer it.
  max_steps: 3
  attempts: 3
  {extra}
input_schema:
  type: object
  required: [question]
  properties: {{question: {{type: string}}}}
defaults:
  timeout: 20s
  retries: 1
"""

# The catalogue: two capabilities the other goal type's steps use, with schemas.
CATALOGUE = """\
type: catalogue.source
steps:
  - name: classify
    capability: classify
    description: Sorts a question into a category
    output_schema:
      type: object
      properties: {category: {type: string}}
  - name: answer
    capability: answer
    depends_on: [classify]
    description: Writes the answer to a question
    input: {question: $goal.question, category: $steps.classify.output.category}
"""

VALID = {
    "steps": [
        {"name": "classify", "capability": "classify", "input": {"text": "$goal.question"}},
        {
            "name": "answer",
            "capability": "answer",
            "depends_on": ["classify"],
            "input": {"question": "$goal.question", "category": "$steps.classify.output.category"},
        },
    ]
}
UNKNOWN_CAPABILITY = {"steps": [{"name": "guess", "capability": "oracle"}]}
CYCLE = {
    "steps": [
        {"name": "a", "capability": "classify", "depends_on": ["b"]},
        {"name": "b", "capability": "answer", "depends_on": ["a"]},
    ]
}


def plan(value: dict[str, Any]) -> str:
    return json.dumps(value)


class Planning:
    """A planning thread with its applier, publisher and clock, on one test schema."""

    def __init__(self, engine: Engine, namespace: str, model: ChatModel, extra: str = "") -> None:
        self.engine = engine
        self.now = T0
        self.topics = Topics(namespace)
        self.bus = MemoryBus()
        self.codec = default_codec()
        self.playbooks = PlaybookRegistry(
            [
                load_text(GOAL_TYPE.format(extra=extra), source="adhoc.yaml"),
                load_text(CATALOGUE, source="catalogue.yaml"),
            ]
        )
        outgoing = Outgoing(self.topics, self.codec)
        self.applier = Applier(
            playbooks=self.playbooks, outgoing=outgoing, random=random.Random(3).random
        )
        self.reviews = Reviews(self.applier.versions, outgoing)
        self.model = model
        self.llm = LLMClient(LLMSettings(base_url=model.url, model="scripted-model"))
        self.loop = self.make_loop()

    def make_loop(self, **options: Any) -> PlanningLoop:
        return PlanningLoop(
            engine=self.engine,
            applier=self.applier,
            planner=Planner(self.llm, clock=self.clock, governor=options.pop("governor", None)),
            playbooks=self.playbooks,
            publisher=OutboxPublisher(self.engine, self.bus.publisher("orchestrator")),
            admin=self.bus.admin(),
            settings=OrchestratorSettings(namespace=self.topics.namespace),
            clock=self.clock,
            **options,
        )

    def clock(self) -> datetime:
        return self.now

    def submit(self, workflow_id: str, question: str = "Where is my parcel?") -> WorkflowState:
        goal = NewWorkflow(
            id=workflow_id, type="adhoc.help", input={"question": question}, accepted_at=self.now
        )
        with self.engine.begin() as conn:
            self.applier.plan_new(conn, goals=[goal], now=self.now)
        return self.state(workflow_id)

    def state(self, workflow_id: str) -> WorkflowState:
        with self.engine.connect() as conn:
            found = workflow_rows.get(conn, workflow_id=workflow_id)
        assert found is not None
        return found

    def attempts(self, workflow_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.attempts_of(conn, workflow_id=workflow_id)

    def dispatched(self, capability: str) -> list[TaskDispatched]:
        records = self.bus.broker.records(self.topics.tasks(capability))
        return [self.codec.decode(r.value, r.headers).payload for r in records]  # type: ignore[misc]


@pytest.fixture
def model() -> Iterator[ChatModel]:
    with chat_model() as served:
        yield served


@pytest.fixture
def planning(engine: Engine, namespace: str, model: ChatModel) -> Planning:
    return Planning(engine, namespace, model)


def test_a_valid_plan_runs_on_the_playbook_version_it_makes(planning: Planning) -> None:
    assert planning.submit("wf-1").status is WorkflowStatus.PLANNING
    planning.model.say(plan(VALID))

    assert planning.loop.tick() == 1

    state = planning.state("wf-1")
    assert state.status is WorkflowStatus.RUNNING
    assert {name: task.status for name, task in state.tasks.items()} == {
        "classify": TaskStatus.DISPATCHED,
        "answer": TaskStatus.PENDING,
    }
    # The first step went out with its input filled in from the goal.
    (dispatched,) = planning.dispatched("classify")
    assert dispatched.input == {"text": "Where is my parcel?"}
    # The plan is a stored playbook version, with the goal type's defaults.
    with planning.engine.connect() as conn:
        document = conn.execute(
            select(playbook_versions.c.document).where(
                playbook_versions.c.digest == state.playbook_digest
            )
        ).scalar_one()
    assert [s["name"] for s in document["steps"]] == ["classify", "answer"]
    assert document["defaults"] == {"timeout": "20s", "retries": 1}
    assert state.tasks["classify"].max_attempts == 2
    # The model was told the rules, the instructions, the catalogue and the goal.
    (request,) = planning.model.requests
    system_prompt, goal = (m["content"] for m in request["messages"])
    assert "Classify the request before you answer it." in system_prompt
    assert '"capability": "classify"' in system_prompt
    assert "Sorts a question into a category" in system_prompt
    assert "Where is my parcel?" in goal
    assert request["response_format"] == {"type": "json_object"}
    (attempt,) = planning.attempts("wf-1")
    assert attempt["outcome"] == "accepted"
    assert attempt["answer"] == plan(VALID)
    assert attempt["prompt"] == request["messages"]
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (100, 20)
    with planning.engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["plan_attempt"])
    assert (entry.actor, entry.action) == ("waypost:planner", "plan_attempt")
    assert entry.detail["outcome"] == "accepted"


def test_refused_plans_are_asked_for_again_with_the_reasons(planning: Planning) -> None:
    planning.submit("wf-2")
    planning.model.say(plan(UNKNOWN_CAPABILITY), plan(CYCLE), plan(VALID))

    planning.loop.tick()

    assert planning.state("wf-2").status is WorkflowStatus.RUNNING
    assert [a["outcome"] for a in planning.attempts("wf-2")] == [
        "refused",
        "refused",
        "accepted",
    ]
    first, second, third = planning.model.requests
    feedback = second["messages"][-1]["content"]
    assert "unknown capability 'oracle'" in feedback
    assert second["messages"][-2] == {"role": "assistant", "content": plan(UNKNOWN_CAPABILITY)}
    assert "cycle" in third["messages"][-1]["content"]
    assert len(third["messages"]) == len(first["messages"]) + 4


def test_the_workflow_fails_with_the_reasons_when_no_plan_passes(planning: Planning) -> None:
    planning.submit("wf-3")
    planning.model.say(plan(CYCLE), "not json at all", plan(UNKNOWN_CAPABILITY))

    planning.loop.tick()

    state = planning.state("wf-3")
    assert state.status is WorkflowStatus.FAILED
    assert state.reason is not None
    assert state.reason.startswith("planning failed: 3 plan(s) asked for and none passed")
    assert "unknown capability 'oracle'" in state.reason
    assert state.tasks == {}
    assert len(planning.model.requests) == 3
    with planning.engine.connect() as conn:
        claims = conn.execute(select(func.count()).select_from(planner_claims)).scalar()
    assert claims == 0


def test_a_model_that_is_down_leaves_the_workflow_planning_until_it_answers(
    planning: Planning,
) -> None:
    planning.submit("wf-4")
    planning.model.say(503)

    planning.loop.tick()

    assert planning.state("wf-4").status is WorkflowStatus.PLANNING
    assert planning.attempts("wf-4") == []  # no answer: nothing to audit, no plan used up
    assert planning.loop.tick() == 0  # backed off: not asked again at once
    planning.model.say(plan(VALID))
    planning.now += timedelta(seconds=3)  # past the first backoff (2 s)

    assert planning.loop.tick() == 1

    assert planning.state("wf-4").status is WorkflowStatus.RUNNING


def test_the_token_budget_stops_planning(engine: Engine, namespace: str, model: ChatModel) -> None:
    planning = Planning(engine, namespace, model, extra="budget: {tokens: 150}")
    planning.submit("wf-5")
    model.say(plan(CYCLE))  # 120 tokens per answer

    planning.loop.tick()

    state = planning.state("wf-5")
    assert state.status is WorkflowStatus.FAILED
    assert state.reason == (
        "planning failed: the planner's budget of 150 tokens for this workflow is spent "
        "(240 used over 2 plan(s))"
    )
    assert len(model.requests) == 2


def test_a_workflow_another_orchestrator_plans_is_left_to_it(planning: Planning) -> None:
    planning.submit("wf-6")
    with planning.engine.begin() as conn:
        assert store.claim(conn, instance="other", now=T0, lease_s=300, limit=5) == ["wf-6"]

    assert planning.loop.tick() == 0

    assert planning.model.requests == []
    planning.now = T0 + timedelta(seconds=301)  # the other orchestrator died
    planning.model.say(plan(VALID))
    assert planning.loop.tick() == 1
    assert planning.state("wf-6").status is WorkflowStatus.RUNNING


def test_a_plan_needing_approval_waits_and_an_edit_is_checked(
    engine: Engine, namespace: str, model: ChatModel
) -> None:
    planning = Planning(
        engine, namespace, model, extra="requires_approval: true\n  review: {group: planners}"
    )
    planning.submit("wf-7")
    model.say(plan(VALID))
    planning.loop.tick()

    state = planning.state("wf-7")
    assert state.status is WorkflowStatus.PLANNING
    (escalation,) = state.escalations.values()
    assert (escalation.kind, escalation.group, escalation.content["output"]) == (
        "plan",
        "planners",
        VALID,
    )
    with engine.connect() as conn:
        capability = conn.execute(select(escalations.c.capability)).scalar_one()
    assert capability == "planner"
    assert planning.loop.tick() == 0  # a plan waiting for a reviewer is not planned again
    assert planning.dispatched("classify") == []

    def decide(output: dict[str, Any]) -> None:
        request = DecisionRequest(
            escalation.id, "edit", escalation.version, escalation.digest, output
        )
        with engine.begin() as conn:
            accepted = planning.reviews.decide(
                conn, request=request, reviewer=Reviewer("rita"), now=planning.now
            )
            decided = accepted.escalation
            assert decided.decision is not None
            states = workflow_rows.lock(conn, ids=["wf-7"])
            planning.applier.apply(
                conn,
                states=states,
                inputs=[
                    (
                        "wf-7",
                        DecisionMade(
                            escalation.id, decided.decision, escalation.version, escalation.digest
                        ),
                    )
                ],
                now=planning.now,
            )

    with pytest.raises(InvalidDecision) as refused:
        decide(UNKNOWN_CAPABILITY)
    assert "unknown capability 'oracle'" in str(refused.value)
    assert planning.state("wf-7").status is WorkflowStatus.PLANNING

    edited = {"steps": [{"name": "only", "capability": "answer", "input": {"question": "hi"}}]}
    decide(edited)

    state = planning.state("wf-7")
    assert state.status is WorkflowStatus.RUNNING
    assert list(state.tasks) == ["only"]
    assert state.tasks["only"].status is TaskStatus.DISPATCHED
    assert state.tasks["only"].input == {"question": "hi"}


def test_governance_decides_and_counts_each_model_call(
    planning: Planning, engine: Engine, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "planner.yaml").write_text(
        "name: planner-budget\nversion: 1\napplies_to: {agents: [planner]}\n"
        "budgets:\n  per_workflow: {tokens: 200}\n"
    )
    gate = Gate(engine, PolicySet([policies], check_interval_s=60))
    loop = planning.make_loop(governor=gate)
    planning.submit("wf-8")
    planning.model.say(plan(CYCLE))

    loop.tick()

    state = planning.state("wf-8")
    assert state.status is WorkflowStatus.FAILED
    assert state.reason is not None
    assert "governance denied the planner's model call" in state.reason
    assert len(planning.model.requests) == 2  # the third call would overspend the budget
    with engine.connect() as conn:
        rows = conn.execute(select(plan_attempts.c.outcome)).scalars().all()
    assert rows == ["refused", "refused"]


def test_a_planner_whose_claim_was_taken_over_stops_and_leaves_the_workflow(
    planning: Planning,
) -> None:
    planning.submit("wf-9")
    planning.model.say(plan(CYCLE), plan(VALID))
    loop = planning.make_loop(lease_s=30)
    with planning.engine.begin() as conn:
        assert store.claim(conn, instance=loop.instance, now=T0, lease_s=30, limit=5) == ["wf-9"]
        state = workflow_rows.get(conn, workflow_id="wf-9")
    assert state is not None
    # While the first plan is asked for, the claim runs out and another orchestrator
    # takes the workflow: the renewal before the second call finds it gone.
    original = planning.model.next_answer

    def take_over(request: dict[str, Any]) -> str | int | dict[str, Any]:
        with planning.engine.begin() as conn:
            conn.execute(
                planner_claims.update().values(
                    claimed_by="other", claimed_until=T0 + timedelta(minutes=5)
                )
            )
        return original(request)

    planning.model.next_answer = take_over  # type: ignore[method-assign]
    loop.plan_one(state, catalogue.from_playbooks(planning.playbooks), store.History())

    assert len(planning.model.requests) == 1
    assert planning.state("wf-9").status is WorkflowStatus.PLANNING
    assert [a["outcome"] for a in planning.attempts("wf-9")] == ["refused"]
    with planning.engine.connect() as conn:
        holder = conn.execute(select(planner_claims.c.claimed_by)).scalar_one()
    assert holder == "other"
