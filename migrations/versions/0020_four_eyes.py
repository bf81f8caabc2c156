"""Four eyes: an escalation may need the approval of several different reviewers
(orchestrator/workflow/four_eyes.py); it records how many, and the approvals given so far.

Existing escalations need one approval and have none recorded, which is what they were.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "escalations",
        sa.Column(
            "required_approvals",
            sa.Integer,
            nullable=False,
            server_default=sa.text("1"),
            comment="different reviewers who must approve (2: four eyes)",
        ),
    )
    op.add_column(
        "escalations",
        sa.Column(
            "approvals",
            JSONB,
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
            comment="approve/edit decisions given so far to the output awaiting approval",
        ),
    )


def downgrade() -> None:
    op.drop_column("escalations", "approvals")
    op.drop_column("escalations", "required_approvals")
