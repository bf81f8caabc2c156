"""The bridge's memory of remote tasks in the real PostgreSQL (a migrated schema of its
own): rows written and replaced, and migration 0016 building exactly this table."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from waypost.a2a.store import DatabaseFollowed, Followed, MemoryFollowed, metadata

pytestmark = pytest.mark.integration


def test_the_database_remembers_and_replaces_the_remote_task_of_a_task(engine: Engine) -> None:
    followed = DatabaseFollowed(engine)
    first = Followed("t-1", "refunds", "remote-1", "ctx-1", attempt=1)

    assert followed.find("t-1") is None
    followed.save(first)
    assert followed.find("t-1") == first

    answered = Followed("t-1", "refunds", "remote-1", "ctx-1", 2, answered_escalation_id="esc-1")
    followed.save(answered)
    assert followed.find("t-1") == answered
    assert DatabaseFollowed(engine).find("t-1") == answered  # another worker sees it too


def test_memory_stands_in_without_a_database() -> None:
    followed = MemoryFollowed()
    row = Followed("t-1", "refunds", "remote-1", "ctx-1", attempt=1)

    followed.save(row)

    assert followed.find("t-1") == row
    assert followed.find("t-2") is None


def test_migration_0016_builds_exactly_the_table_the_store_describes(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_name": lambda name, kind, _: kind != "table" or name in metadata.tables,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        assert compare_metadata(context, metadata) == []
