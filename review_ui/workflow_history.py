"""What the workflow page and the workflow API show besides the workflow itself: its
escalations with their decisions, its dead letters, and its timeline (the state merged
with the audit trail; orchestrator/workflow/timeline.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from orchestrator.store import audit_log
from orchestrator.store import dead_letters as dead_letter_index
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.audit_log import AuditFilter, AuditRecord
from orchestrator.store.dead_letters import DeadLetter, DeadLetterFilter
from orchestrator.workflow.state import EscalationState, WorkflowState
from orchestrator.workflow.timeline import TimelineEvent, timeline

# A workflow's page reads at most this many of its audit entries (the newest) and dead
# letters; a workflow with more is one to investigate with the audit log and the DLQ
# workbench, whose filters page through all of them.
MAX_AUDIT = 1_000
MAX_DEAD_LETTERS = 200


@dataclass(frozen=True, slots=True)
class WorkflowHistory:
    """A workflow and everything that happened to it."""

    state: WorkflowState
    audit: Sequence[AuditRecord]
    dead_letters: Sequence[DeadLetter]
    events: Sequence[TimelineEvent]
    audit_truncated: bool = False

    @property
    def escalations(self) -> list[EscalationState]:
        """Its escalations, oldest first."""
        return sorted(self.state.escalations.values(), key=lambda e: (e.opened_at, e.id))


def load(conn: Connection, *, workflow_id: str, namespace: str) -> WorkflowHistory | None:
    """The workflow's history, or None if there is no such workflow."""
    if "\x00" in workflow_id:  # PostgreSQL text cannot hold NUL: no stored id has one
        return None
    state = workflow_rows.get(conn, workflow_id=workflow_id)
    if state is None:
        return None
    entries = audit_log.page(
        conn, filters=AuditFilter(workflow_id=workflow_id), limit=MAX_AUDIT + 1
    )
    audit = entries[:MAX_AUDIT][::-1]
    letters = dead_letters_of(conn, workflow_id=workflow_id, namespace=namespace)
    return WorkflowHistory(
        state=state,
        audit=audit,
        dead_letters=letters,
        events=timeline(state, audit, letters),
        audit_truncated=len(entries) > MAX_AUDIT,
    )


def dead_letters_of(conn: Connection, *, workflow_id: str, namespace: str) -> list[DeadLetter]:
    """The workflow's dead letters, newest first, whatever their status."""
    found = dead_letter_index.search(
        conn,
        filters=DeadLetterFilter(status=None, workflow=workflow_id),
        namespace=namespace,
        page_size=MAX_DEAD_LETTERS,
    )
    return found.rows
