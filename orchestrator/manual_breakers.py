"""Opening and closing a capability's circuit by hand (admins, through the API, the
console or `waypost breakers open|close`).

Each change locks the capability's ``circuit_breakers`` row, as the orchestrator does
before it folds a batch's events onto it, so a hand and a batch never interleave; then it
applies the pure rule (``workflow/breaker.py``: ``open_by_hand``, ``close_by_hand``),
writes the row and an audit row (the admin's name, the capability, what they did, until
when and why) in the caller's transaction. Closing wakes the tasks that wait for the
circuit, as an automatic close does. The orchestrator honours an open-by-hand circuit in
its next batch: its tasks go to their step's fallback or wait, until the time is up or
somebody closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from orchestrator.errors import OrchestratorError
from orchestrator.store import audit
from orchestrator.store import breakers as breaker_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.workflow.breaker import Circuit, CircuitState, close_by_hand, open_by_hand

OPENED = "circuit_opened_by_hand"
CLOSED = "circuit_closed_by_hand"


class CircuitAlreadyClosed(OrchestratorError):
    """Closing a circuit that is closed: nothing to do (409)."""

    status = 409


@dataclass(frozen=True, slots=True)
class OpenCircuit:
    """Open ``capability``'s circuit for ``for_s`` seconds (None: until closed by hand)."""

    capability: str
    actor: str
    reason: str
    for_s: float | None = None


@dataclass(frozen=True, slots=True)
class CloseCircuit:
    """Close ``capability``'s circuit: back to normal."""

    capability: str
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class CircuitChanged:
    """A circuit before and after a change by hand, and how many waiting tasks it woke."""

    before: Circuit
    after: Circuit
    woken: int = 0


def open_circuit(conn: Connection, command: OpenCircuit, *, now: datetime) -> CircuitChanged:
    """Open a circuit by hand (again: a new end and reason), in the caller's transaction."""
    before = _locked(conn, command.capability, now)
    until = now + timedelta(seconds=command.for_s) if command.for_s is not None else None
    after = open_by_hand(before, actor=command.actor, reason=command.reason, now=now, until=until)
    breaker_rows.write(conn, circuits=[after], now=now)
    _audit(conn, OPENED, command.actor, before, after, command.reason, now)
    return CircuitChanged(before, after)


def close_circuit(conn: Connection, command: CloseCircuit, *, now: datetime) -> CircuitChanged:
    """Close a circuit by hand and wake the tasks waiting for it; ``CircuitAlreadyClosed``
    when it is closed."""
    before = _locked(conn, command.capability, now)
    if before.state is CircuitState.CLOSED:
        raise CircuitAlreadyClosed(
            f"the circuit of capability {command.capability!r} is closed already; nothing to close"
        )
    after = close_by_hand(before, now=now)
    breaker_rows.write(conn, circuits=[after], now=now)
    woken = breaker_rows.wake_waiting(conn, capability=command.capability, now=now)
    _audit(conn, CLOSED, command.actor, before, after, command.reason, now, woken=woken)
    return CircuitChanged(before, after, woken)


def _locked(conn: Connection, capability: str, now: datetime) -> Circuit:
    return breaker_rows.lock(conn, capabilities=[capability], now=now)[capability]


def _audit(
    conn: Connection,
    action: str,
    actor: str,
    before: Circuit,
    after: Circuit,
    reason: str,
    now: datetime,
    *,
    woken: int | None = None,
) -> None:
    detail: dict[str, object] = {
        "capability": after.capability,
        "reason": reason,
        "was": before.state.value,
        "until": after.open_until.isoformat() if action == OPENED and after.open_until else None,
    }
    if woken is not None:
        detail["woken_tasks"] = woken
    audit.record(conn, entries=[AuditEntry(actor=actor, action=action, detail=detail, at=now)])
