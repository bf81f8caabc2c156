"""GET /api/v1/agents: the agent registry, one item per worker process and capability."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import READ
from review_ui.deps import ConnectionDep
from review_ui.openapi import NO_NUL, problems
from waypost import agent_registry
from waypost.agent_registry import AgentInstance, Status

router = APIRouter(tags=["agents"])
Reader = Annotated[Principal, Depends(api_roles(READ))]


class AgentInstancePublic(BaseModel):
    """One agent worker's capability: what it is, whether it is alive, what it did."""

    capability: str
    version: str
    description: str
    instance: str = Field(description="The worker's name (WAYPOST_AGENT_INSTANCE or host:pid).")
    host: str
    pid: int
    concurrency: int = Field(description="Tasks the worker runs at once.")
    status: Status = Field(
        description="up; stale when no heartbeat came for three intervals (killed, hung "
        "or cut off from the database); stopped after a clean stop."
    )
    started_at: datetime
    last_heartbeat: datetime
    heartbeat_age_s: float = Field(description="Seconds since the last heartbeat.")
    heartbeat_interval_s: float
    stopped_at: datetime | None
    tasks_completed: int
    tasks_failed: int
    tasks_per_min: float = Field(description="Results per minute over about the last minute.")
    tasks_per_min_avg: float = Field(description="Results per minute since the worker started.")
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]

    @classmethod
    def of(cls, row: AgentInstance) -> AgentInstancePublic:
        """The public form of a registry row."""
        return cls(
            capability=row.capability,
            version=row.version,
            description=row.description,
            instance=row.instance,
            host=row.host,
            pid=row.pid,
            concurrency=row.concurrency,
            status=row.status,
            started_at=row.started_at,
            last_heartbeat=row.last_heartbeat,
            heartbeat_age_s=round(row.heartbeat_age_s, 3),
            heartbeat_interval_s=row.heartbeat_interval_s,
            stopped_at=row.stopped_at,
            tasks_completed=row.tasks_completed,
            tasks_failed=row.tasks_failed,
            tasks_per_min=row.tasks_per_min,
            tasks_per_min_avg=round(row.tasks_per_min_avg, 3),
            input_schema=row.input_schema,
            output_schema=row.output_schema,
        )


class AgentInstancesPublic(BaseModel):
    """Registry rows by capability, then instance."""

    items: list[AgentInstancePublic]


@router.get("/agents", response_model=AgentInstancesPublic, responses=problems(401, 422, 429, 503))
def list_agents(
    connection: ConnectionDep,
    _: Reader,
    capability: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    include_stopped: Annotated[bool, Query()] = False,
) -> AgentInstancesPublic:
    """Agent workers that announced themselves, with their heartbeat and throughput."""
    rows = agent_registry.list_instances(
        connection, capability=capability, include_stopped=include_stopped
    )
    return AgentInstancesPublic(items=[AgentInstancePublic.of(row) for row in rows])
