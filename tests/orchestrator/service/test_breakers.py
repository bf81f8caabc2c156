"""Circuit breakers, fallbacks and the human fallback on the real PostgreSQL: results go
through the intake and timers through the reconciler, as in production, on a clock the
test moves; circuits live in ``circuit_breakers``, shared by every orchestrator (two
intakes here stand for two instances)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.review import InvalidDecision
from orchestrator.service.applier import Applier
from orchestrator.service.intake import Intake
from orchestrator.store import audit
from orchestrator.store import breakers as breaker_rows
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.escalations import InboxFilter
from orchestrator.workflow.breaker import BreakerPolicy, Circuit, CircuitState
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.review import FALLBACK
from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from orchestrator.workflow.transitions import CIRCUIT_OPEN
from tests.orchestrator.test_reviews import T0, ReviewHarness
from waypost.bus.loop import Delivery
from waypost.bus.records import ReceivedRecord
from waypost.events import (
    AgentInfo,
    ErrorInfo,
    Event,
    GoalSubmitted,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
)

pytestmark = pytest.mark.integration

POLICY = BreakerPolicy(failure_threshold=3, window_s=60, open_s=30)

PLAYBOOKS = {
    # One attempt on echo, then up to two on echo-backup.
    "fallback.yaml": """\
type: test.fallback
steps:
  - name: work
    capability: echo
    timeout: 1m
    retries: 0
    fallback: {capability: echo-backup, retries: 1}
    input: {text: $goal.text}
""",
    # No fallback: a refused task waits for the circuit.
    "waiting.yaml": """\
type: test.waiting
steps:
  - name: work
    capability: echo
    timeout: 1m
    retries: 0
    input: {text: $goal.text}
""",
    # A person supplies the output when the only attempt failed.
    "rescued.yaml": """\
type: test.rescued
steps:
  - name: work
    capability: echo
    timeout: 1m
    retries: 0
    on_failure: escalate
    review: {group: rescuers}
    input: {text: $goal.text}
output:
  text: $steps.work.output.text
""",
}


class Orchestrators(ReviewHarness):
    """A review harness whose orchestrator has circuit breakers (``POLICY``), and can
    start a second orchestrator instance on the same database (``other``)."""

    def __init__(self, engine: Engine, namespace: str, playbook_dir: Path) -> None:
        super().__init__(engine, namespace, playbook_dir, capabilities=("echo", "echo-backup"))
        self.intake.applier = self.reconciler.applier = self.applier()

    def applier(self) -> Applier:
        return Applier(
            playbooks=self.playbooks,
            outgoing=Outgoing(self.topics, self.codec),
            random=random.Random(7).random,
            breakers=POLICY,
        )

    def other(self) -> Intake:
        """The intake of a second orchestrator instance."""
        publisher = OutboxPublisher(self.engine, self.bus.publisher("orchestrator-2"))
        return Intake(
            engine=self.engine, applier=self.applier(), publisher=publisher, clock=self.clock
        )

    def delivery(self, event: Event, topic: str) -> Delivery:
        encoded = self.codec.encode(event)
        record = ReceivedRecord(topic, 0, 0, encoded.key, encoded.value, encoded.headers)
        return Delivery(record, self.codec.decode(record.value, record.headers))

    def goal(self, goal_id: str, goal_type: str = "test.fallback") -> Delivery:
        payload = GoalSubmitted(type=goal_type, input={"text": goal_id})
        return self.delivery(Event(payload, source="tests", id=goal_id), self.topics.goals)

    def submit(self, goal_id: str, goal_type: str = "test.fallback") -> None:
        self.intake.handle([self.goal(goal_id, goal_type)])

    def failure(self, workflow_id: str, message: str = "echo is down") -> Delivery:
        task = self.state(workflow_id).tasks["work"]
        payload = TaskFailed(
            workflow_id=workflow_id,
            task_id=task.id,
            step="work",
            capability=task.capability,
            attempt=task.attempt,
            error=ErrorInfo(type="RuntimeError", message=message, retryable=True),
            agent=AgentInfo(capability=task.capability, version="1", instance="test:1"),
        )
        return self.delivery(Event(payload, source="tests/agent"), self.topics.results)

    def fail(self, workflow_id: str, message: str = "echo is down") -> None:
        self.intake.handle([self.failure(workflow_id, message)])

    def succeed(self, workflow_id: str, text: str = "done") -> None:
        task = self.state(workflow_id).tasks["work"]
        payload = TaskCompleted(
            workflow_id=workflow_id,
            task_id=task.id,
            step="work",
            capability=task.capability,
            attempt=task.attempt,
            output={"text": text},
            confidence=0.9,
            agent=AgentInfo(capability=task.capability, version="1", instance="test:1"),
        )
        self.deliver(Event(payload, source="tests/agent"), self.topics.results)

    def circuit(self, capability: str = "echo") -> Circuit:
        with self.engine.connect() as conn:
            return breaker_rows.read(conn, capabilities=[capability]).get(capability) or Circuit(
                capability
            )

    def store(self, circuit: Circuit) -> None:
        with self.engine.begin() as conn:
            breaker_rows.lock(conn, capabilities=[circuit.capability], now=self.now)
            breaker_rows.write(conn, circuits=[circuit], now=self.now)

    def circuit_events(self) -> list[tuple[str, dict[str, Any]]]:
        with self.engine.connect() as conn:
            entries = audit.recent(conn, limit=100)
        return [
            (e.action, dict(e.detail)) for e in reversed(entries) if e.actor == "waypost:breaker"
        ]

    def dispatched(self, capability: str) -> list[TaskDispatched]:
        found = [p for p in self.published(self.topics.tasks(capability))]
        return [p for p in found if isinstance(p, TaskDispatched)]


@pytest.fixture
def orchestrators(engine: Engine, namespace: str, tmp_path: Path) -> Orchestrators:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    for name, text in PLAYBOOKS.items():
        (directory / name).write_text(text)
    return Orchestrators(engine, namespace, directory)


def open_echo(orchestrators: Orchestrators) -> list[str]:
    """Three test.fallback workflows whose echo attempts failed (at T0, +1 s, +2 s): the
    circuit of echo opened at T0 + 2 s, until T0 + 32 s. Returns their ids."""
    ids = [f"g-{n}" for n in range(3)]
    for n, workflow_id in enumerate(ids):
        orchestrators.now = T0 + timedelta(seconds=n)
        orchestrators.submit(workflow_id)
        orchestrators.fail(workflow_id, message=f"echo is down ({n})")
    return ids


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- opening, fallback routing ----------------------------------------------------------------


def test_failures_open_the_circuit_and_each_failed_task_goes_to_the_fallback(
    orchestrators: Orchestrators,
) -> None:
    ids = open_echo(orchestrators)

    circuit = orchestrators.circuit()
    assert circuit.state is CircuitState.OPEN
    assert (circuit.opened_at, circuit.open_until) == (at(2), at(32))
    assert circuit.failures == (at(0), at(1), at(2))
    assert circuit.last_error == "RuntimeError: echo is down (2)"
    for workflow_id in ids:
        task = orchestrators.state(workflow_id).tasks["work"]
        assert (task.status, task.capability, task.attempt) == (
            TaskStatus.DISPATCHED,
            "echo-backup",
            2,
        )
        assert [a.capability for a in task.attempts] == [None, "echo-backup"]
    assert [p.workflow_id for p in orchestrators.dispatched("echo-backup")] == ids
    assert orchestrators.circuit_events() == [
        (
            "circuit_opened",
            {
                "capability": "echo",
                "state": "open",
                "failures": 3,
                "last_error": "RuntimeError: echo is down (2)",
                "open_until": at(32).isoformat(),
                "task_id": task_id("g-2", "work"),
            },
        )
    ]


def test_while_the_circuit_is_open_new_work_goes_straight_to_the_fallback(
    orchestrators: Orchestrators,
) -> None:
    open_echo(orchestrators)
    orchestrators.now = at(10)

    orchestrators.submit("g-new")

    task = orchestrators.state("g-new").tasks["work"]
    assert (task.capability, task.attempt, task.max_attempts) == ("echo-backup", 1, 2)
    assert [p.workflow_id for p in orchestrators.dispatched("echo")] == ["g-0", "g-1", "g-2"]
    assert orchestrators.dispatched("echo-backup")[-1].workflow_id == "g-new"
    orchestrators.succeed("g-new", "from the backup")
    done = orchestrators.state("g-new")
    assert done.status is WorkflowStatus.COMPLETED
    assert done.tasks["work"].output == {"text": "from the backup"}


def test_failures_older_than_the_window_do_not_open_it(orchestrators: Orchestrators) -> None:
    for n, second in enumerate((0, 30, 70)):
        orchestrators.now = at(second)
        orchestrators.submit(f"g-{n}")
        orchestrators.fail(f"g-{n}")

    circuit = orchestrators.circuit()
    assert circuit.state is CircuitState.CLOSED
    assert circuit.failures == (at(30), at(70))


# --- half-open, the probe, closing -------------------------------------------------------------


def test_after_the_cool_down_one_probe_goes_and_its_success_closes_the_circuit(
    orchestrators: Orchestrators,
) -> None:
    open_echo(orchestrators)
    orchestrators.now = at(40)

    orchestrators.intake.handle([orchestrators.goal("g-probe"), orchestrators.goal("g-during")])

    probe = orchestrators.state("g-probe").tasks["work"]
    during = orchestrators.state("g-during").tasks["work"]
    assert (probe.capability, probe.status) == ("echo", TaskStatus.DISPATCHED)
    assert (during.capability, during.status) == ("echo-backup", TaskStatus.DISPATCHED)
    half_open = orchestrators.circuit()
    assert half_open.state is CircuitState.HALF_OPEN
    assert (half_open.probe_task_id, half_open.probe_until) == (probe.id, at(100))

    orchestrators.now = at(41)
    orchestrators.succeed("g-probe")

    assert orchestrators.circuit() == Circuit(
        "echo", last_error="RuntimeError: echo is down (2)", updated_at=at(41)
    )
    assert [action for action, _ in orchestrators.circuit_events()] == [
        "circuit_opened",
        "circuit_half_opened",
        "circuit_closed",
    ]
    orchestrators.submit("g-after")
    assert orchestrators.state("g-after").tasks["work"].capability == "echo"


def test_the_probes_failure_opens_the_circuit_again(orchestrators: Orchestrators) -> None:
    open_echo(orchestrators)
    orchestrators.now = at(40)
    orchestrators.submit("g-probe")
    orchestrators.now = at(42)

    orchestrators.fail("g-probe", message="still down")

    circuit = orchestrators.circuit()
    assert circuit.state is CircuitState.OPEN
    assert (circuit.opened_at, circuit.open_until) == (at(42), at(72))
    assert orchestrators.circuit_events()[-1][0] == "circuit_reopened"
    # The probe's own task moved on to the fallback.
    assert orchestrators.state("g-probe").tasks["work"].capability == "echo-backup"


def test_tasks_waiting_for_the_circuit_go_as_soon_as_the_probe_succeeds(
    orchestrators: Orchestrators,
) -> None:
    open_echo(orchestrators)
    orchestrators.now = at(10)
    orchestrators.submit("g-wait", "test.waiting")
    waiting = orchestrators.state("g-wait").tasks["work"]
    assert (waiting.status, waiting.attempt, waiting.next_attempt_at) == (
        TaskStatus.RETRY_WAIT,
        0,
        at(32),
    )
    assert waiting.error is not None
    assert waiting.error.type == CIRCUIT_OPEN

    # At the end of the cool-down the waiting task is the probe (a timer, so the reconciler).
    orchestrators.now = at(33)
    orchestrators.reconciler.tick()
    assert orchestrators.circuit().probe_task_id == waiting.id
    # Another one arriving meanwhile waits for the probe...
    orchestrators.submit("g-later", "test.waiting")
    later = orchestrators.state("g-later").tasks["work"]
    assert (later.status, later.next_attempt_at) == (TaskStatus.RETRY_WAIT, at(63))

    # ...and is due the moment the probe's success closes the circuit.
    orchestrators.now = at(34)
    orchestrators.succeed("g-wait")
    assert orchestrators.state("g-later").tasks["work"].next_attempt_at == at(34)
    orchestrators.reconciler.tick()
    later = orchestrators.state("g-later").tasks["work"]
    assert (later.status, later.capability, later.attempt) == (TaskStatus.DISPATCHED, "echo", 1)


# --- shared by every orchestrator -----------------------------------------------------------


def _together(*actions: Callable[[], None]) -> None:
    """Run actions in threads that start at the same moment; re-raise their errors."""
    barrier = threading.Barrier(len(actions))
    errors: list[BaseException] = []

    def run(action: Callable[[], None]) -> None:
        barrier.wait()
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def test_two_orchestrators_let_only_one_probe_through(orchestrators: Orchestrators) -> None:
    orchestrators.store(
        Circuit(
            "echo",
            CircuitState.OPEN,
            failures=(at(0), at(0), at(0)),
            opened_at=at(0),
            open_until=at(30),
            updated_at=at(0),
        )
    )
    orchestrators.now = at(31)
    other = orchestrators.other()

    for round_ in range(5):
        first, second = f"g-a{round_}", f"g-b{round_}"
        _together(
            lambda a=first: orchestrators.intake.handle([orchestrators.goal(a, "test.waiting")]),
            lambda b=second: other.handle([orchestrators.goal(b, "test.waiting")]),
        )
        tasks = [orchestrators.state(w).tasks["work"] for w in (first, second)]
        sent = [t for t in tasks if t.status is TaskStatus.DISPATCHED]
        if round_ == 0:
            assert len(sent) == 1, tasks
            assert orchestrators.circuit().probe_task_id == sent[0].id
        else:
            assert sent == [], tasks  # the probe is still out
    assert len(orchestrators.dispatched("echo")) == 1


def test_failures_two_orchestrators_see_at_once_are_all_counted(
    orchestrators: Orchestrators,
) -> None:
    ids = [f"g-{n}" for n in range(4)]
    orchestrators.intake.handle([orchestrators.goal(w, "test.waiting") for w in ids])
    other = orchestrators.other()
    orchestrators.now = at(5)
    first = [orchestrators.failure(w) for w in ids[:2]]
    second = [orchestrators.failure(w) for w in ids[2:]]
    policy = BreakerPolicy(failure_threshold=5, window_s=60, open_s=30)
    orchestrators.intake.applier = orchestrators.reconciler.applier = Applier(
        playbooks=orchestrators.playbooks,
        outgoing=Outgoing(orchestrators.topics, orchestrators.codec),
        random=random.Random(7).random,
        breakers=policy,
    )
    other.applier = Applier(
        playbooks=orchestrators.playbooks,
        outgoing=Outgoing(orchestrators.topics, orchestrators.codec),
        random=random.Random(8).random,
        breakers=policy,
    )

    _together(lambda: orchestrators.intake.handle(first), lambda: other.handle(second))

    circuit = orchestrators.circuit()
    assert circuit.state is CircuitState.CLOSED
    assert circuit.failures == (at(5),) * 4


# --- the human fallback ----------------------------------------------------------------------


@pytest.fixture
def rescued(orchestrators: Orchestrators) -> str:
    """A test.rescued workflow whose only attempt failed: it waits for a person."""
    orchestrators.submit("g-rescue", "test.rescued")
    orchestrators.now = at(5)
    orchestrators.fail("g-rescue", message="the source is down")
    return "g-rescue"


def test_when_every_attempt_failed_a_person_is_asked(
    orchestrators: Orchestrators, rescued: str
) -> None:
    state = orchestrators.state(rescued)
    (escalation,) = state.escalations.values()
    assert state.status is WorkflowStatus.RUNNING
    assert state.tasks["work"].status is TaskStatus.AWAITING_REVIEW
    assert (escalation.kind, escalation.group) == (FALLBACK, "rescuers")
    assert escalation.reason == (
        "every attempt failed: RuntimeError: the source is down; decide: retry, edit an "
        "output by hand, or reject"
    )
    with orchestrators.engine.connect() as conn:
        inbox = escalation_rows.inbox(conn, filters=InboxFilter(), now=orchestrators.now)
    assert [(row.id, row.kind) for row in inbox.rows] == [(escalation.id, FALLBACK)]
    assert [e.action for e in orchestrators.audit(escalation.id)] == ["opened"]
    assert (
        orchestrators.published(orchestrators.topics.dlq(orchestrators.topics.tasks("echo"))) == []
    )


def test_a_reviewer_supplies_the_output_by_hand(orchestrators: Orchestrators, rescued: str) -> None:
    (escalation,) = orchestrators.state(rescued).escalations.values()

    with pytest.raises(InvalidDecision, match="there is no output to approve"):
        orchestrators.decide(orchestrators.request(escalation, "approve"))
    orchestrators.decide(orchestrators.request(escalation, "edit", output={"text": "by hand"}))
    orchestrators.deliver_decisions()

    done = orchestrators.state(rescued)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.output == {"text": "by hand"}


def test_a_reviewer_retries_and_the_step_is_dispatched_again(
    orchestrators: Orchestrators, rescued: str
) -> None:
    (escalation,) = orchestrators.state(rescued).escalations.values()

    orchestrators.decide(orchestrators.request(escalation, "retry"))
    orchestrators.deliver_decisions()

    task = orchestrators.state(rescued).tasks["work"]
    assert (task.status, task.attempt, task.first_valid_attempt) == (TaskStatus.DISPATCHED, 2, 2)
    orchestrators.succeed(rescued, "second time lucky")
    assert orchestrators.state(rescued).status is WorkflowStatus.COMPLETED


def test_a_reviewer_rejects_and_the_workflow_fails(
    orchestrators: Orchestrators, rescued: str
) -> None:
    (escalation,) = orchestrators.state(rescued).escalations.values()

    orchestrators.decide(orchestrators.request(escalation, "reject", reason="not worth it"))
    orchestrators.deliver_decisions()

    failed = orchestrators.state(rescued)
    assert failed.status is WorkflowStatus.FAILED
    assert failed.reason == "reviewer ada rejected step 'work': not worth it"
