"""Login throttling: failed logins per typed name and per client address (and requests
with unknown API tokens per client address), with the locks they caused.

Shared by every HTTP app replica; rows of names and addresses with nothing left in the
observation window and no lock are deleted as failures are written.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.Text, primary_key=True, comment="name | client"),
        sa.Column(
            "key",
            sa.Text,
            primary_key=True,
            comment="the name as typed (whether a user has it or not), or the client address",
        ),
        sa.Column(
            "failures",
            ARRAY(_TS),
            nullable=False,
            server_default=sa.text("'{}'"),
            comment="failed attempts (and attempts being checked) in the window, oldest first",
        ),
        sa.Column("last_failure_at", _TS, comment="the newest of failures (for pruning)"),
        sa.Column("locked_at", _TS),
        sa.Column("locked_until", _TS, comment="every attempt is refused until then"),
        sa.CheckConstraint("scope IN ('name', 'client')", name="login_throttle_scope"),
    )
    op.create_index("login_throttle_last_failure", "login_throttle", ["last_failure_at"])
    op.create_index("login_throttle_locked_until", "login_throttle", ["locked_until"])


def downgrade() -> None:
    op.drop_table("login_throttle")
