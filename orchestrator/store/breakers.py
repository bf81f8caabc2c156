"""Circuit-breaker rows: one per capability, shared by every orchestrator instance.

A row exists once its circuit first changed; a capability without one is closed. Changes
are made under a row lock (``lock``), so instances never lose each other's failures and
only one of them lets the half-open probe through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert

from orchestrator.store.tables import circuit_breakers, tasks
from orchestrator.workflow.breaker import Circuit, CircuitState
from orchestrator.workflow.state import TaskStatus
from orchestrator.workflow.transitions import CIRCUIT_OPEN


def read(conn: Connection, *, capabilities: Sequence[str]) -> dict[str, Circuit]:
    """The stored circuits of these capabilities (without locking them)."""
    if not capabilities:
        return {}
    rows = conn.execute(
        select(circuit_breakers).where(circuit_breakers.c.capability.in_(list(capabilities)))
    ).all()
    return {row.capability: _circuit(row) for row in rows}


def lock(conn: Connection, *, capabilities: Sequence[str], now: datetime) -> dict[str, Circuit]:
    """These capabilities' circuits, locked until the transaction ends (rows created,
    closed, for capabilities that had none). Locks are taken in name order, so two
    transactions locking several never wait on each other in a cycle."""
    wanted = sorted(set(capabilities))
    if not wanted:
        return {}
    conn.execute(
        insert(circuit_breakers)
        .values(
            [
                {"capability": c, "state": CircuitState.CLOSED.value, "updated_at": now}
                for c in wanted
            ]
        )
        .on_conflict_do_nothing(index_elements=["capability"])
    )
    rows = conn.execute(
        select(circuit_breakers)
        .where(circuit_breakers.c.capability.in_(wanted))
        .order_by(circuit_breakers.c.capability)
        .with_for_update()
    ).all()
    return {row.capability: _circuit(row) for row in rows}


def write(conn: Connection, *, circuits: Sequence[Circuit], now: datetime) -> None:
    """Store circuits whose rows this transaction locked."""
    for circuit in circuits:
        conn.execute(
            update(circuit_breakers)
            .where(circuit_breakers.c.capability == circuit.capability)
            .values(**_fields(circuit), updated_at=circuit.updated_at or now)
        )


def held_by_hand(conn: Connection) -> list[Circuit]:
    """The circuits an admin opened by hand (without locking them): what a batch must
    honour even when automatic circuit breakers are off."""
    rows = conn.execute(
        select(circuit_breakers)
        .where(circuit_breakers.c.opened_by.is_not(None))
        .order_by(circuit_breakers.c.capability)
    ).all()
    return [_circuit(row) for row in rows]


def list_all(conn: Connection) -> list[Circuit]:
    """Every stored circuit, by capability."""
    rows = conn.execute(select(circuit_breakers).order_by(circuit_breakers.c.capability)).all()
    return [_circuit(row) for row in rows]


def wake_waiting(conn: Connection, *, capability: str, now: datetime) -> int:
    """Make the tasks waiting for this capability's circuit due now (it closed). Tasks
    another transaction holds are left to their own time, so this never waits."""
    waiting = (
        select(tasks.c.id)
        .where(
            tasks.c.status == TaskStatus.RETRY_WAIT.value,
            tasks.c.capability == capability,
            tasks.c.error["type"].astext == CIRCUIT_OPEN,
            tasks.c.next_attempt_at > now,
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = conn.execute(
        update(tasks).where(tasks.c.id.in_(waiting)).values(next_attempt_at=now, updated_at=now)
    )
    return int(result.rowcount or 0)


def _fields(circuit: Circuit) -> dict[str, Any]:
    return {
        "state": circuit.state.value,
        "failures": len(circuit.failures),
        "failure_times": list(circuit.failures),
        "last_error": circuit.last_error,
        "opened_at": circuit.opened_at,
        "open_until": circuit.open_until,
        "probe_task_id": circuit.probe_task_id,
        "probe_until": circuit.probe_until,
        "opened_by": circuit.opened_by,
        "open_reason": circuit.open_reason,
    }


def _circuit(row: Any) -> Circuit:
    return Circuit(
        capability=row.capability,
        state=CircuitState(row.state),
        failures=tuple(row.failure_times or ()),
        opened_at=row.opened_at,
        open_until=row.open_until,
        probe_task_id=row.probe_task_id,
        probe_until=row.probe_until,
        last_error=row.last_error,
        updated_at=row.updated_at,
        opened_by=row.opened_by,
        open_reason=row.open_reason,
    )
