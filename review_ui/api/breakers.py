"""GET /api/v1/breakers: the circuit breaker of every capability;
POST /api/v1/breakers/{capability}/open and .../close: an admin opens a circuit by hand
(for a while or until closed) or closes one (back to normal), audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from orchestrator.manual_breakers import (
    CircuitAlreadyClosed,
    CloseCircuit,
    OpenCircuit,
    close_circuit,
    open_circuit,
)
from orchestrator.store import breakers as breaker_rows
from orchestrator.workflow.breaker import Circuit
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import OPERATE, READ
from review_ui.capabilities import known_capabilities
from review_ui.deps import AppState, ConnectionDep, StateDep
from review_ui.openapi import NO_NUL, PathText, problems
from review_ui.problems import Problem
from waypost.events import utcnow
from waypost.events.storable import value_problem

router = APIRouter(tags=["breakers"])
Reader = Annotated[Principal, Depends(api_roles(READ))]
Operator = Annotated[Principal, Depends(api_roles(OPERATE))]
CapabilityPath = PathText
LONGEST_S = 30 * 24 * 3600.0  # a hold longer than a month is "until closed"


class BreakerPublic(BaseModel):
    """A capability's circuit breaker."""

    capability: str
    state: Literal["closed", "open", "half_open"] = Field(
        description="closed: gets work; open: gets none until open_until; half_open: one "
        "probe task at a time"
    )
    failures: int = Field(description="failures counted in the window at the last one")
    last_failure_at: datetime | None
    last_error: str | None
    opened_at: datetime | None
    open_until: datetime | None = Field(
        description="when an open circuit lets a probe go; null for a circuit opened by "
        "hand until it is closed by hand"
    )
    probe_task_id: str | None = Field(description="the task let through while half-open")
    probe_until: datetime | None = Field(description="when another probe may go")
    opened_by: str | None = Field(
        description="who opened the circuit by hand; null when the breaker opened it (or "
        "it is not open)"
    )
    open_reason: str | None = Field(description="why they opened it")
    updated_at: datetime | None

    @classmethod
    def of(cls, circuit: Circuit) -> BreakerPublic:
        """The public view of a circuit."""
        return cls(
            capability=circuit.capability,
            state=circuit.state.value,
            failures=len(circuit.failures),
            last_failure_at=max(circuit.failures, default=None),
            last_error=circuit.last_error,
            opened_at=circuit.opened_at,
            open_until=circuit.open_until,
            probe_task_id=circuit.probe_task_id,
            probe_until=circuit.probe_until,
            opened_by=circuit.opened_by,
            open_reason=circuit.open_reason,
            updated_at=circuit.updated_at,
        )


class BreakerListPublic(BaseModel):
    """Every capability's circuit breaker, by capability."""

    items: list[BreakerPublic]


class BreakerOpen(BaseModel):
    """Why the circuit is opened, and for how long."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=NO_NUL)
    for_s: float | None = Field(
        None,
        gt=0,
        le=LONGEST_S,
        description="Seconds the circuit stays open; then it lets one probe task through "
        "(as an automatically opened circuit does). Omitted: until it is closed by hand.",
    )


class BreakerClose(BaseModel):
    """Why the circuit is closed."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=NO_NUL)


@router.get("/breakers", response_model=BreakerListPublic, responses=problems(401, 429, 503))
def list_breakers(connection: ConnectionDep, state: StateDep, _: Reader) -> BreakerListPublic:
    """The circuit breakers of every capability the playbooks use or an agent worker
    announced, and of any other capability that has one; a capability whose circuit
    never changed is closed."""
    stored = {circuit.capability: circuit for circuit in breaker_rows.list_all(connection)}
    capabilities = sorted(known_capabilities(connection, state.playbooks))
    return BreakerListPublic(
        items=[BreakerPublic.of(stored.get(c) or Circuit(c)) for c in capabilities]
    )


_CHANGE_WHY = {
    400: "A body that cannot be read as JSON.",
    404: "No playbook, agent worker or stored circuit knows this capability.",
    409: "Closing a circuit that is closed already.",
    422: "A body that breaks the schema (a reason is required), or a reason that cannot be stored.",
}


@router.post(
    "/breakers/{capability}/open",
    response_model=BreakerPublic,
    responses=problems(400, 401, 403, 404, 422, 429, 503, why=_CHANGE_WHY),
)
def open_breaker(
    capability: CapabilityPath, body: BreakerOpen, state: StateDep, principal: Operator
) -> BreakerPublic:
    """Open the capability's circuit by hand: from the orchestrator's next batch on, its
    tasks go to their step's fallback or wait, whatever the outcomes of attempts, until
    `for_s` has passed (then one probe goes, as after an automatic opening) or it is
    closed by hand. Opening an open circuit again sets a new end and reason. Audited
    (`circuit_opened_by_hand`) with the caller's name, the end and the reason."""
    with state.engine.begin() as connection:
        _check(connection, state, capability, body.reason)
        command = OpenCircuit(capability, principal.name, body.reason, body.for_s)
        changed = open_circuit(connection, command, now=utcnow())
    return BreakerPublic.of(changed.after)


@router.post(
    "/breakers/{capability}/close",
    response_model=BreakerPublic,
    responses=problems(400, 401, 403, 404, 409, 422, 429, 503, why=_CHANGE_WHY),
)
def close_breaker(
    capability: CapabilityPath, body: BreakerClose, state: StateDep, principal: Operator
) -> BreakerPublic:
    """Close the capability's circuit by hand, whoever or whatever opened it: it gets
    work again, its counted failures are forgotten, and the tasks waiting for it are due
    at once. Audited (`circuit_closed_by_hand`) with the caller's name and the reason."""
    with state.engine.begin() as connection:
        _check(connection, state, capability, body.reason)
        command = CloseCircuit(capability, principal.name, body.reason)
        try:
            changed = close_circuit(connection, command, now=utcnow())
        except CircuitAlreadyClosed as exc:
            raise Problem(409, "Circuit closed already", str(exc)) from None
    return BreakerPublic.of(changed.after)


def _check(connection: Connection, state: AppState, capability: str, reason: str) -> None:
    """404 for a capability nobody knows (a typo would otherwise make a circuit), 422
    for a reason that cannot be stored."""
    if "\x00" in capability or capability not in known_capabilities(connection, state.playbooks):
        raise Problem(
            404,
            "Capability not found",
            f"no playbook, agent worker or circuit knows capability {capability!r}; "
            "`waypost breakers ls` lists them",
        )
    problem = value_problem(reason)
    if problem is not None:
        raise Problem(422, "Invalid reason", f"the reason cannot be stored: {problem}")
