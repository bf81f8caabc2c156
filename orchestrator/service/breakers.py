"""The circuit breakers' adapter: the book a batch of decisions consults, loaded from and
saved to PostgreSQL in the batch's transaction.

Reading is cheap while circuits are closed: the rows are read without locks, and a batch
that only dispatches to closed circuits and sees successes changes nothing. Circuits that
are not closed are locked before deciding, so only one instance lets a probe through.
What the decisions did is folded onto the rows, locked, when the batch is saved; so
failures two instances saw at once are all counted. Every state change is logged and
written to ``audit_events`` (actor ``waypost:breaker``); a circuit that closes makes the
tasks waiting for it due at once. Circuits an admin opened by hand are honoured here too,
even with automatic breakers off (``orchestrator/manual_breakers.py`` changes them).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from orchestrator.store import audit
from orchestrator.store import breakers as breaker_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.workflow.breaker import (
    BreakerPolicy,
    Circuit,
    CircuitBook,
    CircuitEvent,
    CircuitState,
    apply_event,
    change,
)

log = logging.getLogger(__name__)

ACTOR = "waypost:breaker"


@dataclass(frozen=True)
class Breakers:
    """Loads and saves the circuit books of the orchestrator's transactions."""

    policy: BreakerPolicy

    def book(self, conn: Connection, *, capabilities: Iterable[str], now: datetime) -> CircuitBook:
        """The circuits of these capabilities for a batch of decisions; those not closed
        locked (until the transaction ends). With automatic breakers off, only circuits
        opened by hand, unlocked: they never change but when their time is up."""
        if not self.policy.enabled:
            return CircuitBook.of(self.policy, breaker_rows.held_by_hand(conn))
        seen = breaker_rows.read(conn, capabilities=sorted(set(capabilities)))
        unsettled = [c for c, circuit in seen.items() if circuit.state is not CircuitState.CLOSED]
        if unsettled:
            seen.update(breaker_rows.lock(conn, capabilities=unsettled, now=now))
        return CircuitBook.of(self.policy, seen.values())

    def save(
        self,
        conn: Connection,
        book: CircuitBook,
        *,
        now: datetime,
        workflows: Collection[str] | None = None,
    ) -> None:
        """Fold what the batch did onto the locked rows and store them; only the events of
        ``workflows`` when given (the others' decisions were not kept)."""
        changed = {
            capability: kept
            for capability, events in book.changed().items()
            if (kept := [e for e in events if workflows is None or e.workflow_id in workflows])
        }
        if not changed:
            return
        fresh = breaker_rows.lock(conn, capabilities=list(changed), now=now)
        after: list[Circuit] = []
        entries: list[AuditEntry] = []
        for capability in sorted(changed):
            circuit = original = fresh[capability]
            for event in changed[capability]:
                before, circuit = circuit, apply_event(circuit, self.policy, event)
                what = change(before, circuit)
                if what is not None:
                    entries.append(_announce(what, circuit, event, now))
                    if circuit.state is CircuitState.CLOSED:
                        woken = breaker_rows.wake_waiting(conn, capability=capability, now=now)
                        log.info("%d task(s) waiting for %r are due now", woken, capability)
            if circuit != original:
                after.append(circuit)
        breaker_rows.write(conn, circuits=after, now=now)
        audit.record(conn, entries=entries)


def _announce(what: str, circuit: Circuit, event: CircuitEvent, now: datetime) -> AuditEntry:
    """Log a state change and describe it for the audit trail."""
    capability = circuit.capability
    if circuit.state is CircuitState.OPEN:
        log.warning(
            "circuit of capability %r %s (%d failure(s), last: %s): its tasks go to their "
            "fallbacks or wait until %s",
            capability,
            what,
            len(circuit.failures),
            circuit.last_error,
            circuit.open_until.isoformat() if circuit.open_until else "-",
        )
    elif circuit.state is CircuitState.HALF_OPEN:
        log.info(
            "circuit of capability %r is half-open: task %s is the probe",
            capability,
            circuit.probe_task_id,
        )
    elif event.kind == "admitted":
        log.info("circuit of capability %r closed: the time it was opened for is up", capability)
    else:
        log.info("circuit of capability %r closed: task %s succeeded", capability, event.task_id)
    return AuditEntry(
        actor=ACTOR,
        action=f"circuit_{what}",
        workflow_id=event.workflow_id,
        detail={
            "capability": capability,
            "state": circuit.state.value,
            "failures": len(circuit.failures),
            "last_error": circuit.last_error,
            "open_until": circuit.open_until.isoformat() if circuit.open_until else None,
            "task_id": event.task_id,
        },
        at=now,
    )
