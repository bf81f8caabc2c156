"""Applying the Alembic migrations to the configured schema."""

from __future__ import annotations

import threading
import zlib
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from waypost.errors import ConfigError
from waypost.outages import Outages, retry_in_place


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


def require_current(engine: Engine, schema: str) -> None:
    """Refuse (ConfigError) a database the migrations have not brought up to date."""
    found, wanted = current(engine, schema), head()
    if found != wanted:
        raise ConfigError(
            f"database schema {schema!r} is at revision {found or 'none'}, this version "
            f"needs {wanted}: run `waypost migrate`"
        )


def wait_until_current(
    engine: Engine, schema: str, *, outages: Outages, stop: threading.Event
) -> bool:
    """``require_current``, waiting in place while the database is unreachable (a
    service started before its database); False if ``stop`` was set meanwhile."""
    done, _ = retry_in_place(lambda: require_current(engine, schema), outages=outages, stop=stop)
    return done
