"""Capabilities as the Agents page shows them: their live workers (the agent registry),
throughput and error rate over a recent window and backlog (the orchestrator's tasks),
and their circuit breaker.

Which capabilities there are: those the playbooks use, those a worker announced, and
those with a stored circuit. Throughput and error rate count the attempts that ended in
the window: completed ones per minute, and the share of ended attempts that failed or
whose lease ran out (cancelled and superseded attempts say nothing about the
capability). An attempt that went to a step's fallback counts for the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import breakers as breaker_rows
from orchestrator.store import capability_load
from orchestrator.store.capability_load import AttemptCount, Backlog
from orchestrator.workflow.breaker import Circuit
from waypost import agent_registry
from waypost.agent_registry import AgentInstance

# The windows the page offers, by the name in its URL; the default first.
WINDOWS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
}
DEFAULT_WINDOW = "15m"
ERRORS = frozenset({"failed", "lease_expired"})
COUNTED = ERRORS | {"completed"}


@dataclass(frozen=True, slots=True)
class Outcomes:
    """How a capability's attempts that ended in the window went."""

    completed: int = 0
    errors: int = 0  # failed, or the lease ran out

    @property
    def ended(self) -> int:
        """Attempts that said something about the capability."""
        return self.completed + self.errors

    @property
    def error_rate(self) -> float | None:
        """The share of ended attempts that failed; None when none ended."""
        return self.errors / self.ended if self.ended else None


@dataclass(frozen=True, slots=True)
class CapabilityView:
    """One capability: its workers, what it did in the window, its backlog, its circuit."""

    name: str
    circuit: Circuit
    workers: tuple[AgentInstance, ...] = ()
    backlog: Backlog = field(default_factory=Backlog)
    outcomes: Outcomes = field(default_factory=Outcomes)
    window: timedelta = WINDOWS[DEFAULT_WINDOW]

    @property
    def per_min(self) -> float:
        """Completed attempts per minute over the window."""
        return self.outcomes.completed / (self.window.total_seconds() / 60)

    @property
    def reported_per_min(self) -> float:
        """Results per minute over the last minute, as the live workers report them."""
        return sum(w.tasks_per_min for w in self.workers if w.status == "up")

    @property
    def versions(self) -> list[str]:
        """The versions its live workers run."""
        return sorted({w.version for w in self.workers if w.status == "up"})

    def count(self, status: str) -> int:
        """How many of its workers are ``up``, ``stale`` or ``stopped``."""
        return sum(1 for w in self.workers if w.status == status)


def known_capabilities(conn: Connection, playbooks: PlaybookRegistry) -> set[str]:
    """Every capability a playbook uses, a worker announced or a circuit was stored for."""
    stored = {circuit.capability for circuit in breaker_rows.list_all(conn)}
    announced = {
        row.capability for row in agent_registry.list_instances(conn, include_stopped=True)
    }
    return set(playbooks.capabilities()) | stored | announced


def overview(
    conn: Connection, playbooks: PlaybookRegistry, *, now: datetime, window: timedelta
) -> list[CapabilityView]:
    """Every known capability, by name."""
    circuits = {circuit.capability: circuit for circuit in breaker_rows.list_all(conn)}
    workers = agent_registry.list_instances(conn, include_stopped=True)
    backlog = capability_load.backlog(conn)
    counted = capability_load.attempts_since(conn, since=now - window)
    return assemble(
        playbooks,
        circuits=circuits,
        workers=workers,
        backlog=backlog,
        counted=counted,
        window=window,
    )


def assemble(
    playbooks: PlaybookRegistry,
    *,
    circuits: Mapping[str, Circuit],
    workers: Iterable[AgentInstance],
    backlog: Mapping[str, Backlog],
    counted: Sequence[AttemptCount],
    window: timedelta,
) -> list[CapabilityView]:
    """The views of every capability named by any of the inputs (no I/O)."""
    by_capability: dict[str, list[AgentInstance]] = {}
    for worker in workers:
        by_capability.setdefault(worker.capability, []).append(worker)
    outcomes = outcomes_by_capability(playbooks, counted)
    names = (
        set(playbooks.capabilities())
        | set(circuits)
        | set(by_capability)
        | set(backlog)
        | set(outcomes)
    )
    return [
        CapabilityView(
            name=name,
            circuit=circuits.get(name) or Circuit(name),
            workers=tuple(by_capability.get(name, ())),
            backlog=backlog.get(name) or Backlog(),
            outcomes=outcomes.get(name) or Outcomes(),
            window=window,
        )
        for name in sorted(names)
    ]


def outcomes_by_capability(
    playbooks: PlaybookRegistry, counted: Iterable[AttemptCount]
) -> dict[str, Outcomes]:
    """Attempt outcomes added up per capability: the fallback an attempt went to, else
    its step's own capability (the task's, when the playbook no longer knows the step)."""
    totals: dict[str, Outcomes] = {}
    for row in counted:
        if row.outcome not in COUNTED:
            continue
        name = row.capability or _step_capability(playbooks, row)
        before = totals.get(name) or Outcomes()
        if row.outcome in ERRORS:
            totals[name] = Outcomes(before.completed, before.errors + row.count)
        else:
            totals[name] = Outcomes(before.completed + row.count, before.errors)
    return totals


def _step_capability(playbooks: PlaybookRegistry, row: AttemptCount) -> str:
    playbook = playbooks.get(row.workflow_type)
    if playbook is not None:
        try:
            return playbook.step(row.step).capability
        except KeyError:
            pass
    return row.task_capability
