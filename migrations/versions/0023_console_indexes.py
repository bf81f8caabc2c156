"""Indexes the operators' console pages read by: recent tasks per capability (the
agents page, decision quality), a workflow's audit trail (its timeline), the audit log
by actor, and policy decisions newest first (the governance page).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("tasks_updated", "tasks", ["updated_at"])
    op.create_index("audit_events_workflow", "audit_events", ["workflow_id", "at", "id"])
    op.create_index("audit_events_actor", "audit_events", ["actor", "at"])
    op.create_index("policy_decisions_at", "policy_decisions", ["at", "id"])


def downgrade() -> None:
    op.drop_index("policy_decisions_at", table_name="policy_decisions")
    op.drop_index("audit_events_actor", table_name="audit_events")
    op.drop_index("audit_events_workflow", table_name="audit_events")
    op.drop_index("tasks_updated", table_name="tasks")
