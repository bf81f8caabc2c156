"""Circuits opened and closed by hand on the real PostgreSQL, honoured by the
orchestrator as in production: results through the intake, timers through the
reconciler, on a clock the test moves (the harness of tests/orchestrator/service/
test_breakers.py). Every change by hand is in the audit log."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.manual_breakers import (
    CircuitAlreadyClosed,
    CloseCircuit,
    OpenCircuit,
    close_circuit,
    open_circuit,
)
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store.tables import audit_events
from orchestrator.workflow.breaker import DISABLED, CircuitState
from orchestrator.workflow.state import TaskStatus
from orchestrator.workflow.transitions import CIRCUIT_OPEN
from tests.orchestrator.service.test_breakers import Orchestrators, at, open_echo
from tests.orchestrator.service.test_breakers import orchestrators as orchestrators

pytestmark = pytest.mark.integration


def open_by_hand(orchestrators: Orchestrators, for_s: float | None = None) -> None:
    with orchestrators.engine.begin() as conn:
        command = OpenCircuit("echo", "ada", "vendor outage", for_s)
        open_circuit(conn, command, now=orchestrators.now)


def close_by_hand(orchestrators: Orchestrators) -> int:
    with orchestrators.engine.begin() as conn:
        changed = close_circuit(conn, CloseCircuit("echo", "ada", "fixed"), now=orchestrators.now)
    return changed.woken


def by_hand(orchestrators: Orchestrators) -> list[tuple[str, str, dict[str, Any]]]:
    with orchestrators.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.actor, audit_events.c.action, audit_events.c.detail)
            .where(audit_events.c.action.like("%by_hand"))
            .order_by(audit_events.c.id)
        ).all()
    return [(r.actor, r.action, r.detail) for r in rows]


def test_new_work_goes_to_the_fallback_while_a_circuit_is_held_open(
    orchestrators: Orchestrators,
) -> None:
    open_by_hand(orchestrators, for_s=600)

    orchestrators.submit("g-1")

    task = orchestrators.state("g-1").tasks["work"]
    assert (task.status, task.capability) == (TaskStatus.DISPATCHED, "echo-backup")
    assert orchestrators.dispatched("echo") == []
    circuit = orchestrators.circuit()
    assert (circuit.state, circuit.opened_by, circuit.open_reason) == (
        CircuitState.OPEN,
        "ada",
        "vendor outage",
    )
    assert by_hand(orchestrators) == [
        (
            "ada",
            "circuit_opened_by_hand",
            {
                "capability": "echo",
                "reason": "vendor outage",
                "was": "closed",
                "until": (orchestrators.now + timedelta(seconds=600)).isoformat(),
            },
        )
    ]


def test_the_hold_outlasts_the_automatic_end_and_successes_until_closed_by_hand(
    orchestrators: Orchestrators,
) -> None:
    open_echo(orchestrators)  # opened automatically at +2 s, until +32 s
    orchestrators.now = at(5)
    open_by_hand(orchestrators)  # until closed by hand
    orchestrators.succeed("g-0")  # its fallback attempt succeeds

    orchestrators.now = at(3600)
    orchestrators.submit("g-wait", "test.waiting")

    waiting = orchestrators.state("g-wait").tasks["work"]
    assert waiting.status is TaskStatus.RETRY_WAIT
    assert waiting.error is not None
    assert waiting.error.type == CIRCUIT_OPEN
    assert "opened by hand by ada (vendor outage)" in waiting.error.message
    assert waiting.next_attempt_at == at(3630)  # asks again every open_s
    assert orchestrators.circuit().opened_by == "ada"

    # Closing by hand wakes it at once; the reconciler sends it to echo.
    orchestrators.now = at(3601)
    assert close_by_hand(orchestrators) == 1
    orchestrators.reconciler.tick()
    sent = orchestrators.state("g-wait").tasks["work"]
    assert (sent.status, sent.capability, sent.attempt) == (TaskStatus.DISPATCHED, "echo", 1)
    circuit = orchestrators.circuit()
    assert (circuit.state, circuit.failures, circuit.opened_by) == (CircuitState.CLOSED, (), None)
    assert [(action, detail["was"]) for _, action, detail in by_hand(orchestrators)] == [
        ("circuit_opened_by_hand", "open"),
        ("circuit_closed_by_hand", "open"),
    ]
    assert by_hand(orchestrators)[-1][2]["woken_tasks"] == 1


def test_when_the_time_is_up_one_probe_goes_as_after_an_automatic_opening(
    orchestrators: Orchestrators,
) -> None:
    open_by_hand(orchestrators, for_s=60)
    orchestrators.submit("g-wait", "test.waiting")
    assert orchestrators.state("g-wait").tasks["work"].next_attempt_at == at(60)

    orchestrators.now = at(61)
    orchestrators.reconciler.tick()

    circuit = orchestrators.circuit()
    probe = orchestrators.state("g-wait").tasks["work"]
    assert (probe.status, probe.capability) == (TaskStatus.DISPATCHED, "echo")
    assert (circuit.state, circuit.probe_task_id, circuit.opened_by) == (
        CircuitState.HALF_OPEN,
        probe.id,
        None,
    )


def test_with_automatic_breakers_off_a_hold_is_honoured_then_ends(
    orchestrators: Orchestrators,
) -> None:
    orchestrators.intake.applier = orchestrators.reconciler.applier = Applier(
        playbooks=orchestrators.playbooks,
        outgoing=Outgoing(orchestrators.topics, orchestrators.codec),
        random=random.Random(7).random,
        breakers=DISABLED,
    )
    open_by_hand(orchestrators, for_s=60)

    orchestrators.submit("g-wait", "test.waiting")
    assert orchestrators.state("g-wait").tasks["work"].status is TaskStatus.RETRY_WAIT

    orchestrators.now = at(61)
    orchestrators.reconciler.tick()
    assert orchestrators.state("g-wait").tasks["work"].status is TaskStatus.DISPATCHED
    assert orchestrators.circuit().state is CircuitState.CLOSED
    assert orchestrators.circuit_events()[-1][0] == "circuit_closed"


def test_closing_a_closed_circuit_is_refused_and_not_audited(
    orchestrators: Orchestrators,
) -> None:
    with pytest.raises(CircuitAlreadyClosed, match="closed already"):
        close_by_hand(orchestrators)

    assert by_hand(orchestrators) == []
