"""GET /api/v1/breakers: the circuit breaker of every capability."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from orchestrator.store import breakers as breaker_rows
from orchestrator.workflow.breaker import Circuit
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import READ
from review_ui.deps import ConnectionDep, StateDep
from review_ui.openapi import problems

router = APIRouter(tags=["breakers"])
Reader = Annotated[Principal, Depends(api_roles(READ))]


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
    open_until: datetime | None = Field(description="when an open circuit lets a probe go")
    probe_task_id: str | None = Field(description="the task let through while half-open")
    probe_until: datetime | None = Field(description="when another probe may go")
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
            updated_at=circuit.updated_at,
        )


class BreakerListPublic(BaseModel):
    """Every capability's circuit breaker, by capability."""

    items: list[BreakerPublic]


@router.get("/breakers", response_model=BreakerListPublic, responses=problems(401, 429, 503))
def list_breakers(connection: ConnectionDep, state: StateDep, _: Reader) -> BreakerListPublic:
    """The circuit breakers of every capability the playbooks use, and of any other
    capability that has one; a capability whose circuit never changed is closed."""
    stored = {circuit.capability: circuit for circuit in breaker_rows.list_all(connection)}
    capabilities = sorted(set(stored) | state.playbooks.capabilities())
    return BreakerListPublic(
        items=[BreakerPublic.of(stored.get(c) or Circuit(c)) for c in capabilities]
    )
