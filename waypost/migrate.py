"""Applying the Alembic migrations to the configured schema."""

from __future__ import annotations

import zlib
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text


def _config(schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    config.attributes["schema"] = schema
    return config


def upgrade(engine: Engine, schema: str) -> str | None:
    """Create the schema and pgvector if missing, then migrate to the newest revision.

    Concurrent callers (several processes starting at once) are serialised by an advisory
    lock, so each revision runs once. Returns the revision the schema is at.
    """
    config = _config(schema)
    with engine.begin() as connection:
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": zlib.crc32(f"waypost-migrate:{schema}".encode())},
        )
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return MigrationContext.configure(
            connection, opts={"version_table_schema": schema}
        ).get_current_revision()


def head() -> str | None:
    """The newest revision shipped with this version of Waypost."""
    return ScriptDirectory.from_config(_config("unused")).get_current_head()


def current(engine: Engine, schema: str) -> str | None:
    """The revision a schema is at (None if never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(
            connection, opts={"version_table_schema": schema}
        ).get_current_revision()
