"""Circuit breakers per capability (pure): when to stop sending a capability work, and
when to try it again.

A circuit is ``closed`` while its capability works. ``failure_threshold`` failures within
``window_s`` open it: for ``open_s`` no new attempt is dispatched to it (the step's
fallback takes the work, or the task waits). Then it is ``half_open``: the next dispatch
is let through as the one *probe*, every other one still refused. The probe's success
closes the circuit; its failure opens it again for another ``open_s``. A probe whose lease
ran out without any outcome (its workflow ended first) frees the slot for another probe.

Only attempts that say something about the capability count: a retryable failure or a
lease that ran out is a failure; a failure the agent marks as not retryable is about the
input and is not counted (a probe failing so only frees the probe slot). While a circuit
is open, outcomes of attempts sent before it opened change nothing.

An admin may also open a circuit by hand (``open_by_hand``), for a while or until they
close it: it then refuses every attempt whatever happens, and only when its time is up
does it behave as an automatically opened circuit whose time is up (a probe goes;
without automatic breakers it simply closes). Closing by hand (``close_by_hand``) puts
any circuit back to normal: closed, with no failures counted.

``CircuitBook`` is what the state machine consults and changes during a batch of
decisions: a snapshot of the circuits and the events it applied to them, which the
adapter folds onto the locked rows (``fold``) when it saves. Time comes in as ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


class CircuitState(StrEnum):
    """Whether a capability gets work."""

    CLOSED = "closed"  # it does
    OPEN = "open"  # it does not, until open_until
    HALF_OPEN = "half_open"  # one probe at a time


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When circuits open and for how long; ``failure_threshold`` 0 never opens one."""

    failure_threshold: int = 5
    window_s: float = 60.0
    open_s: float = 30.0

    @property
    def enabled(self) -> bool:
        """False when no circuit ever opens (nothing to read, lock or store)."""
        return self.failure_threshold > 0


DISABLED = BreakerPolicy(failure_threshold=0)


@dataclass(frozen=True, slots=True)
class Circuit:
    """The breaker of one capability. ``failures`` holds the times of the failures counted
    in the window (at most ``failure_threshold``, newest last)."""

    capability: str
    state: CircuitState = CircuitState.CLOSED
    failures: tuple[datetime, ...] = ()
    opened_at: datetime | None = None
    open_until: datetime | None = None  # when a probe may go (state open)
    probe_task_id: str | None = None  # the task let through as the probe (half_open)
    probe_until: datetime | None = None  # its lease: after it, another probe may go
    last_error: str | None = None
    updated_at: datetime | None = None
    opened_by: str | None = None  # who opened it by hand (None: opened automatically)
    open_reason: str | None = None  # why they did

    def held_open(self, now: datetime) -> bool:
        """True while a circuit opened by hand refuses everything (open_until None: until
        it is closed by hand)."""
        return (
            self.opened_by is not None
            and self.state is CircuitState.OPEN
            and (self.open_until is None or now < self.open_until)
        )


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether an attempt may be dispatched to a capability now. A refused one may ask
    again at ``retry_at``."""

    allowed: bool
    probe: bool = False
    retry_at: datetime | None = None
    reason: str = ""


ALLOWED = Admission(True)


def admit(
    circuit: Circuit, policy: BreakerPolicy, *, task_id: str, now: datetime, probe_until: datetime
) -> tuple[Admission, Circuit]:
    """May ``task_id`` be dispatched to the circuit's capability now? (and the circuit
    after asking: asking may start the half-open probe)."""
    capability = circuit.capability
    if circuit.opened_by is not None and circuit.state is CircuitState.OPEN:
        if circuit.held_open(now):
            # Without an end, ask again now and then (closing it by hand wakes them).
            retry_at = circuit.open_until or now + timedelta(seconds=policy.open_s)
            return Admission(False, retry_at=retry_at, reason=_held_reason(circuit)), circuit
        if not policy.enabled:  # its time is up, and nothing else ever opens it
            return ALLOWED, _closed(circuit, now)
    if not policy.enabled or circuit.state is CircuitState.CLOSED:
        return ALLOWED, circuit
    if circuit.state is CircuitState.OPEN:
        reopen_at = circuit.open_until or now
        if now < reopen_at:
            return Admission(
                False,
                retry_at=reopen_at,
                reason=f"the circuit of capability {capability!r} is open until "
                f"{reopen_at.isoformat(timespec='seconds')}",
            ), circuit
        return _probe(circuit, task_id, now, probe_until)
    free = (
        circuit.probe_task_id in (None, task_id)
        or circuit.probe_until is None
        or circuit.probe_until <= now
    )
    if free:
        return _probe(circuit, task_id, now, probe_until)
    # A successful probe wakes the tasks waiting on the circuit; this is the latest.
    retry_at = min(circuit.probe_until or now, now + timedelta(seconds=policy.open_s))
    return Admission(
        False,
        retry_at=max(retry_at, now),
        reason=f"the circuit of capability {capability!r} is half-open and its probe "
        f"(task {circuit.probe_task_id}) is still running",
    ), circuit


def _held_reason(circuit: Circuit) -> str:
    until = (
        f"until {circuit.open_until.isoformat(timespec='seconds')}"
        if circuit.open_until is not None
        else "until it is closed by hand"
    )
    why = f" ({circuit.open_reason})" if circuit.open_reason else ""
    return (
        f"the circuit of capability {circuit.capability!r} was opened by hand by "
        f"{circuit.opened_by}{why}, {until}"
    )


def _probe(
    circuit: Circuit, task_id: str, now: datetime, probe_until: datetime
) -> tuple[Admission, Circuit]:
    probing = replace(
        circuit,
        state=CircuitState.HALF_OPEN,
        probe_task_id=task_id,
        probe_until=probe_until,
        updated_at=now,
        opened_by=None,
        open_reason=None,
    )
    return Admission(True, probe=True), probing


def _closed(circuit: Circuit, now: datetime) -> Circuit:
    return Circuit(circuit.capability, last_error=circuit.last_error, updated_at=now)


def failed(
    circuit: Circuit, policy: BreakerPolicy, *, task_id: str, now: datetime, error: str
) -> Circuit:
    """An attempt on the capability failed (retryably, or its lease ran out)."""
    if not policy.enabled:
        return circuit
    if circuit.state is CircuitState.CLOSED:
        since = now - timedelta(seconds=policy.window_s)
        recent = (*(t for t in circuit.failures if t > since), now)[-policy.failure_threshold :]
        if len(recent) < policy.failure_threshold:
            return replace(circuit, failures=recent, last_error=error, updated_at=now)
        return _open(replace(circuit, failures=recent), policy, now, error)
    if circuit.state is CircuitState.HALF_OPEN and circuit.probe_task_id == task_id:
        return _open(circuit, policy, now, error)
    return circuit  # sent before the circuit opened, or not the probe


def _open(circuit: Circuit, policy: BreakerPolicy, now: datetime, error: str) -> Circuit:
    return replace(
        circuit,
        state=CircuitState.OPEN,
        opened_at=now,
        open_until=now + timedelta(seconds=policy.open_s),
        probe_task_id=None,
        probe_until=None,
        last_error=error,
        updated_at=now,
    )


def succeeded(circuit: Circuit, *, task_id: str, now: datetime) -> Circuit:
    """An attempt on the capability succeeded: the probe's success closes the circuit."""
    if circuit.state is CircuitState.HALF_OPEN and circuit.probe_task_id == task_id:
        return _closed(circuit, now)
    return circuit


def released(circuit: Circuit, *, task_id: str, now: datetime) -> Circuit:
    """An attempt ended in a way that says nothing about the capability (a failure that
    is not retryable): if it was the probe, another may go."""
    if circuit.state is CircuitState.HALF_OPEN and circuit.probe_task_id == task_id:
        return replace(circuit, probe_task_id=None, probe_until=None, updated_at=now)
    return circuit


def open_by_hand(
    circuit: Circuit, *, actor: str, reason: str, now: datetime, until: datetime | None
) -> Circuit:
    """The circuit opened by ``actor`` until ``until`` (None: until closed by hand): it
    refuses every attempt meanwhile, whatever their outcomes. Opening it again replaces
    the time and the reason."""
    return replace(
        circuit,
        state=CircuitState.OPEN,
        opened_at=now,
        open_until=until,
        probe_task_id=None,
        probe_until=None,
        updated_at=now,
        opened_by=actor,
        open_reason=reason,
    )


def close_by_hand(circuit: Circuit, *, now: datetime) -> Circuit:
    """The circuit back to normal: closed, no failures counted, nobody's hold on it."""
    return _closed(circuit, now)


def change(before: Circuit, after: Circuit) -> str | None:
    """The name of a state change worth recording (opened, half_opened, reopened,
    closed), or None."""
    if before.state is after.state:
        return None
    if after.state is CircuitState.OPEN:
        return "reopened" if before.state is CircuitState.HALF_OPEN else "opened"
    return "half_opened" if after.state is CircuitState.HALF_OPEN else "closed"


# --- one batch of decisions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CircuitEvent:
    """Something a decision of ``workflow_id`` did to a circuit, to fold onto its row."""

    kind: str  # admitted | failed | succeeded | released
    capability: str
    workflow_id: str
    task_id: str
    at: datetime
    probe_until: datetime | None = None
    error: str = ""


def apply_event(circuit: Circuit, policy: BreakerPolicy, event: CircuitEvent) -> Circuit:
    """The circuit after ``event``."""
    if event.kind == "admitted":
        assert event.probe_until is not None
        return admit(
            circuit, policy, task_id=event.task_id, now=event.at, probe_until=event.probe_until
        )[1]
    if event.kind == "failed":
        return failed(circuit, policy, task_id=event.task_id, now=event.at, error=event.error)
    if event.kind == "succeeded":
        return succeeded(circuit, task_id=event.task_id, now=event.at)
    assert event.kind == "released", event.kind
    return released(circuit, task_id=event.task_id, now=event.at)


def fold(circuit: Circuit, policy: BreakerPolicy, events: Iterable[CircuitEvent]) -> Circuit:
    """The circuit after every event, in order."""
    for event in events:
        circuit = apply_event(circuit, policy, event)
    return circuit


@dataclass
class CircuitBook:
    """The circuits one batch of decisions sees, and what the decisions did to them.

    The machine asks it before each dispatch (``admit``) and tells it each attempt's
    outcome; ``events`` lists the changes, in order, for the adapter to save. Capabilities
    it was not given start closed.
    """

    policy: BreakerPolicy = DISABLED
    circuits: dict[str, Circuit] = field(default_factory=dict)
    events: list[CircuitEvent] = field(default_factory=list)

    @classmethod
    def of(cls, policy: BreakerPolicy, circuits: Iterable[Circuit]) -> CircuitBook:
        """A book over these circuits."""
        return cls(policy, {c.capability: c for c in circuits})

    def get(self, capability: str) -> Circuit:
        """The circuit of a capability as this batch sees it."""
        return self.circuits.get(capability) or Circuit(capability)

    def admit(
        self,
        capability: str,
        *,
        workflow_id: str,
        task_id: str,
        now: datetime,
        probe_until: datetime,
    ) -> Admission:
        """May this task's next attempt go to ``capability`` now?"""
        event = CircuitEvent("admitted", capability, workflow_id, task_id, now, probe_until)
        before = self.get(capability)
        admission, after = admit(
            before, self.policy, task_id=task_id, now=now, probe_until=probe_until
        )
        self._keep(before, after, event)
        return admission

    def record(
        self,
        kind: str,
        capability: str,
        *,
        workflow_id: str,
        task_id: str,
        now: datetime,
        error: str = "",
    ) -> None:
        """An attempt's outcome: ``failed``, ``succeeded`` or ``released``."""
        event = CircuitEvent(kind, capability, workflow_id, task_id, now, error=error)
        before = self.get(capability)
        self._keep(before, apply_event(before, self.policy, event), event)

    def _keep(self, before: Circuit, after: Circuit, event: CircuitEvent) -> None:
        if after != before:
            self.circuits[after.capability] = after
            self.events.append(event)

    def changed(self) -> Mapping[str, list[CircuitEvent]]:
        """The events of each capability that changed, in order."""
        by_capability: dict[str, list[CircuitEvent]] = {}
        for event in self.events:
            by_capability.setdefault(event.capability, []).append(event)
        return by_capability
