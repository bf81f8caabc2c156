"""Circuits opened by hand: who opened a capability's circuit, and why.

An admin may open a circuit by hand (for a while, ``open_until``, or until closed: NULL)
or close it; the orchestrator honours such a circuit until its time is up, whatever the
outcomes of attempts (orchestrator/manual_breakers.py).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "circuit_breakers",
        sa.Column(
            "opened_by",
            sa.Text,
            comment="who opened the circuit by hand; NULL: the breaker did (or it is not open)",
        ),
    )
    op.add_column(
        "circuit_breakers",
        sa.Column("open_reason", sa.Text, comment="why they opened it by hand"),
    )


def downgrade() -> None:
    op.drop_column("circuit_breakers", "open_reason")
    op.drop_column("circuit_breakers", "opened_by")
