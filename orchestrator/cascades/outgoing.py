"""A triggered workflow's events carry its cascade depth (``waypost-cascade-depth``).

The orchestrator's records are built by ``Outgoing`` (orchestrator/publishing/records.py);
this adds the header to those of a workflow that a trigger started, so whatever its
events trigger next is one level deeper. A workflow that no trigger started publishes
no header: depth 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from orchestrator.cascades.events import DEPTH_HEADER
from orchestrator.cascades.matching import depth_of
from orchestrator.publishing.records import Outgoing
from orchestrator.workflow.messages import Command
from orchestrator.workflow.state import WorkflowState
from waypost.bus.records import OutgoingRecord


class CascadeOutgoing(Outgoing):
    """``Outgoing`` whose workflow events carry the workflow's cascade depth."""

    __slots__ = ()

    def for_commands(
        self, state: WorkflowState, commands: Iterable[Command]
    ) -> list[OutgoingRecord]:
        """The records ``Outgoing`` builds, the workflow events among them with the
        depth header when the workflow was started by a trigger."""
        records = Outgoing.for_commands(self, state, commands)
        depth = depth_of(state.input)
        if not depth:
            return records
        header = (DEPTH_HEADER, str(depth).encode())
        return [
            replace(record, headers=(*record.headers, header))
            if record.topic == self.topics.workflow_events
            else record
            for record in records
        ]
