"""Alembic environment: runs on the connection ``waypost.migrate`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection: Connection = context.config.attributes["connection"]
schema: str = context.config.attributes["schema"]

context.configure(
    connection=connection,
    version_table_schema=schema,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
