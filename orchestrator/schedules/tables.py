"""The schedules' tables (SQLAlchemy Core); migration 0017 creates them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

schedules = Table(
    "schedules",
    metadata,
    Column("name", Text, primary_key=True),
    Column("source", Text, nullable=False, comment="file (synced from YAML) or api"),
    Column("file", Text, comment="the YAML file of a file-defined schedule"),
    Column("definition", JSONB, nullable=False, comment="the schedule as written"),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column(
        "fired_through",
        DateTime(timezone=True),
        nullable=False,
        comment="every slot up to here is decided (fired or skipped)",
    ),
    Column(
        "next_fire_at",
        DateTime(timezone=True),
        nullable=False,
        comment="when the firing loop looks at it again",
    ),
    Column("last_error", Text, comment="why the last slot could not submit its goal"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", Text, nullable=False),
    Index("schedules_due", "next_fire_at", postgresql_where=text("NOT paused")),
)

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("schedule", Text, primary_key=True),
    Column("slot", DateTime(timezone=True), primary_key=True, comment="the slot's time"),
    Column("workflow_id", Text, comment="the goal it submitted (none if it could not)"),
    Column("late", Boolean, nullable=False, comment="a missed slot fired by catch-up"),
    Column("error", Text, comment="why no goal was submitted"),
    Column("fired_at", DateTime(timezone=True), nullable=False),
)
