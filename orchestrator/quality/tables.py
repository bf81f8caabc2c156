"""The decision-quality drift state (SQLAlchemy Core). Migration 0021 creates it (and
the indexes its queries use on the orchestrator's tables, declared with those tables
in ``orchestrator.store.tables``); a test checks that the migrated schema and this
metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

metadata = MetaData()

decision_quality_drifts = Table(
    "decision_quality_drifts",
    metadata,
    Column("capability", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("verdict", Text, nullable=False, comment="rejected | edited"),
    Column("drifted", Boolean, nullable=False, comment="past the threshold at the last change"),
    Column("rate", Float, nullable=False, comment="count / decided at the last change"),
    Column("threshold", Float, nullable=False),
    Column("count", Integer, nullable=False),
    Column("decided", Integer, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("capability", "version", "verdict", name="decision_quality_drifts_pkey"),
)
