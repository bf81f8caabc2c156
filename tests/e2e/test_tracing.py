"""One OpenTelemetry trace per workflow, across every Kafka hop and the human in the loop.

Every process (orchestrator, agent worker, HTTP app) exports its spans over OTLP/HTTP to
a real receiver in the test; one onboarding workflow fans out to three capabilities,
waits for a reviewer's approval, and completes. Its trace must hold every hop, each
span's parent being the span that caused it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orchestrator.workflow.state import WorkflowStatus
from tests.e2e.conftest import Platform
from tests.e2e.reviewing import BUILTIN_AGENTS, decide, escalation_of, finished, serving, submit
from tests.support.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.waiting import wait_for
from waypost.stack.demo import SAMPLE_HIRES

pytestmark = pytest.mark.e2e

STEPS = ("it", "payroll", "facilities", "welcome")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/HTTP receiver."""
    with otlp_receiver() as running:
        yield running


@pytest.fixture
def traced(platform: Platform, receiver: OtlpReceiver) -> Iterator[httpx.Client]:
    """The platform with tracing on in every process, exporting to ``receiver``."""
    platform.env_overrides.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "WAYPOST_TRACE_URL_TEMPLATE": "http://jaeger.test/trace/{trace_id}",
        }
    )
    with serving(platform, BUILTIN_AGENTS) as client:
        yield client


def test_one_trace_covers_goal_fan_out_escalation_decision_and_completion(
    platform: Platform, traced: httpx.Client, receiver: OtlpReceiver
) -> None:
    workflow_id = submit(traced, "employee.onboarding", SAMPLE_HIRES[0])
    escalation = escalation_of(traced, workflow_id)

    def others_done() -> bool:
        tasks = traced.get(f"/api/v1/workflows/{workflow_id}").json()["tasks"]
        return all(t["status"] == "completed" for t in tasks if t["step"] in ("it", "facilities"))

    # The decision is then what lets the welcome step run (asserted below): otherwise the
    # last of the parallel results would dispatch it.
    wait_for(others_done, timeout=30, interval=0.1, what="it and facilities to complete")
    decide(traced, escalation, "approve")
    assert finished(platform, workflow_id).status is WorkflowStatus.COMPLETED

    workflow = traced.get(f"/api/v1/workflows/{workflow_id}").json()
    trace_id = workflow["trace_id"]
    assert workflow["trace_url"] == f"http://jaeger.test/trace/{trace_id}"
    ns = platform.namespace
    tasks = {t["step"]: (t["id"], t["capability"]) for t in workflow["tasks"]}
    assert set(tasks) == set(STEPS)

    def create_span(step: str) -> ReceivedSpan:
        task_id, capability = tasks[step]
        return one(f"create {ns}.tasks.{capability}", **{"waypost.task.id": task_id})

    def complete() -> list[ReceivedSpan] | None:
        # Each process exports on its own schedule: an agent's span may arrive after the
        # orchestrator's "workflow completed", so wait for every hop asserted below.
        spans = receiver.spans(trace_id)
        names = [s.name for s in spans]
        processed = {
            s.attributes.get("waypost.task.id")
            for s in spans
            if s.name.startswith(f"process {ns}.tasks.")
        }
        done = (
            "workflow completed" in names
            and names.count(f"process {ns}.results") >= 4
            and processed >= {task_id for task_id, _ in tasks.values()}
        )
        return spans if done else None

    spans = wait_for(complete, timeout=30, interval=0.2, what="the workflow's spans")
    # Nothing of this workflow went to another trace.
    elsewhere = [
        s for s in receiver.spans() if s.trace_id != trace_id and _workflow_of(s) == workflow_id
    ]
    assert elsewhere == []

    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "span ids are unique within the trace"

    def parent(span: ReceivedSpan) -> ReceivedSpan:
        assert span.parent_id is not None, f"{span.name} has no parent"
        assert span.parent_id in by_id, f"the parent of {span.name} is not in the trace"
        return by_id[span.parent_id]

    def one(name: str, **attributes: object) -> ReceivedSpan:
        found = [
            s
            for s in spans
            if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())
        ]
        assert len(found) == 1, f"{len(found)} span(s) named {name} with {attributes}"
        return found[0]

    # The goal: the HTTP request is the root; the orchestrator's intake is its child.
    post = one("POST /api/v1/goals")
    assert (post.service, post.kind, post.parent_id) == ("waypost-http", "server", None)
    intake = one(f"process {ns}.goals")
    assert (intake.service, intake.kind) == ("waypost-orchestrator", "consumer")
    assert _ancestors(intake, by_id)[-1] is post

    # Every task: dispatched by the orchestrator, processed by an agent under that dispatch,
    # its result processed by the orchestrator under the agent's span.
    for step, (task_id, capability) in tasks.items():
        topic = f"{ns}.tasks.{capability}"
        create = create_span(step)
        assert (create.service, create.kind) == ("waypost-orchestrator", "producer")
        agent = one(f"process {topic}", **{"waypost.task.id": task_id})
        assert (agent.service, agent.kind) == ("waypost-agents", "consumer")
        assert parent(agent) is create
        assert agent.attributes["messaging.consumer.group.name"] == f"{ns}.agents.{capability}"
        results = [
            s for s in spans if s.name == f"process {ns}.results" and s.parent_id == agent.span_id
        ]
        assert len(results) == 1, f"the result of {step} is processed once, under its agent"
        assert results[0].service == "waypost-orchestrator"
    # The fan-out: the three first steps were dispatched while the goal was processed.
    for step in ("it", "payroll", "facilities"):
        assert parent(create_span(step)) is intake

    # The escalation, the time it waited for the reviewer, the decision.
    escalate = one("escalate payroll")
    assert parent(escalate).name == f"process {ns}.results"
    review = one("review payroll")
    assert parent(review) is escalate
    assert review.service == "waypost-http"
    assert review.attributes["waypost.review.reviewer"] == "test-admin"
    assert review.attributes["waypost.review.action"] == "approve"
    waited = review.attributes["waypost.review.wait_s"]
    assert isinstance(waited, float)
    assert waited > 0
    assert review.seconds == pytest.approx(waited, abs=0.01)
    assert review.start_ns == escalate.start_ns  # the wait starts when the escalation opens
    decision = one(f"process {ns}.decisions")
    assert parent(decision) is review
    # The approved payroll lets the welcome step run: dispatched under the decision.
    assert parent(create_span("welcome")) is decision

    # Completion: the last result's processing ends the workflow.
    completed = one("workflow completed")
    assert completed.service == "waypost-orchestrator"
    assert parent(completed).name == f"process {ns}.results"
    assert _ancestors(completed, by_id)[-1] is post

    # Every span hangs, through its parents, from the goal's request.
    for span in spans:
        assert _ancestors(span, by_id)[-1] is post or span is post, span.name


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    """The span's parent, its parent's parent, ... up to the root (the span if it is one)."""
    chain = []
    current = span
    while current.parent_id is not None:
        assert current.parent_id in by_id, f"the parent of {current.name} is missing"
        current = by_id[current.parent_id]
        chain.append(current)
    return chain or [span]


def _workflow_of(span: ReceivedSpan) -> object:
    return span.attributes.get("waypost.workflow.id")
