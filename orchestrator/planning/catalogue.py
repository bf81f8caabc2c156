"""The capability catalogue the LLM planner plans from: every capability the playbooks'
steps use (with the step's description and output schema) and every capability a live
agent worker announced (with its description and input and output schemas, which win)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from orchestrator.planning.plans import Capability
from orchestrator.playbooks.registry import PlaybookRegistry
from waypost.agent_registry import agent_instances


def from_playbooks(playbooks: PlaybookRegistry) -> dict[str, Capability]:
    """What the playbooks say about the capabilities their steps use."""
    found: dict[str, Capability] = {}
    for playbook in playbooks:
        for step in playbook.steps:
            known = found.get(step.capability)
            found[step.capability] = Capability(
                step.capability,
                (known.description if known and known.description else step.description),
                None,
                known.output_schema if known and known.output_schema else step.output_schema,
            )
    return found


def load(conn: Connection, playbooks: PlaybookRegistry) -> dict[str, Capability]:
    """The catalogue as it is now: the playbooks' capabilities, then what running agent
    workers announced (a worker's newest announcement per capability)."""
    found = from_playbooks(playbooks)
    rows = conn.execute(
        select(
            agent_instances.c.capability,
            agent_instances.c.description,
            agent_instances.c.input_schema,
            agent_instances.c.output_schema,
        )
        .where(agent_instances.c.stopped_at.is_(None))
        .order_by(agent_instances.c.capability, agent_instances.c.last_heartbeat)
    )
    for row in rows:  # the newest heartbeat of a capability comes last and wins
        known = found.get(row.capability)
        found[row.capability] = Capability(
            row.capability,
            row.description or (known.description if known else ""),
            row.input_schema or (known.input_schema if known else None),
            row.output_schema or (known.output_schema if known else None),
        )
    return found
