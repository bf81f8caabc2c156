"""Workflow search (orchestrator/store/workflow_search.py): an index for every sort of
the console's workflow list with the id as tie-breaker (keyset pages), id prefixes,
the triggering event's type and source, and the words of the goal input.

Building them reads the whole table once per index and holds writes to ``workflows``
meanwhile: about 20 s per million workflows.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TRIGGER_EVENT_TYPE = "((input -> '_trigger') ->> 'event_type')"
TRIGGER_SOURCE = "((input -> '_trigger') ->> 'source')"
HAS_TRIGGER = "input ? '_trigger'"
# The goal input's words, without the trigger record (triggered_by searches that).
INPUT_WORDS = (
    "jsonb_to_tsvector('simple'::regconfig, input - '_trigger'::text, "
    """'["string", "numeric"]'::jsonb)"""
)


def upgrade() -> None:
    # The id joins each sort column, so a page starts exactly after its cursor's row.
    for name, columns in (
        ("workflows_accepted", ["accepted_at"]),
        ("workflows_status_accepted", ["status", "accepted_at"]),
    ):
        op.drop_index(name, table_name="workflows")
        op.create_index(name, "workflows", [*columns, "id"])
    # A goal type's workflows of each status, in order: pages and counts per status.
    op.drop_index("workflows_type_accepted", table_name="workflows")
    op.create_index("workflows_type_status", "workflows", ["type", "status", "accepted_at", "id"])
    op.create_index("workflows_started", "workflows", ["started_at", "id"])
    op.create_index("workflows_finished", "workflows", ["finished_at", "id"])
    op.create_index(
        "workflows_id_prefix",
        "workflows",
        ["id"],
        postgresql_ops={"id": "text_pattern_ops"},
    )
    op.create_index(
        "workflows_trigger_event_type",
        "workflows",
        [sa.text(TRIGGER_EVENT_TYPE), "accepted_at", "id"],
        postgresql_where=sa.text(HAS_TRIGGER),
    )
    op.create_index(
        "workflows_trigger_source",
        "workflows",
        [sa.text(TRIGGER_SOURCE), "accepted_at", "id"],
        postgresql_where=sa.text(HAS_TRIGGER),
    )
    op.create_index(
        "workflows_input_search", "workflows", [sa.text(INPUT_WORDS)], postgresql_using="gin"
    )


def downgrade() -> None:
    for name in (
        "workflows_type_status",
        "workflows_input_search",
        "workflows_trigger_source",
        "workflows_trigger_event_type",
        "workflows_id_prefix",
        "workflows_finished",
        "workflows_started",
    ):
        op.drop_index(name, table_name="workflows")
    for name, columns in (
        ("workflows_accepted", ["accepted_at"]),
        ("workflows_status_accepted", ["status", "accepted_at"]),
        ("workflows_type_accepted", ["type", "accepted_at"]),
    ):
        if name != "workflows_type_accepted":
            op.drop_index(name, table_name="workflows")
        op.create_index(name, "workflows", columns)
