"""The Alembic migrations on the real PostgreSQL: they reach head, are idempotent, and
build exactly the tables ``orchestrator.store.tables`` describes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, text

import migrations
from orchestrator.planning.tables import metadata as planning_metadata
from orchestrator.quality.tables import metadata as quality_metadata
from orchestrator.schedules.tables import metadata as schedule_metadata
from orchestrator.store.tables import metadata as orchestrator_metadata
from review_ui.auth.tables import metadata as auth_metadata
from waypost import migrate
from waypost.a2a.store import metadata as bridge_metadata
from waypost.agent_registry import metadata as registry_metadata
from waypost.db import make_engine
from waypost.governance.tables import metadata as governance_metadata
from waypost.memory.tables import metadata as memory_metadata
from waypost.runtime.recorded import metadata as recorded_metadata
from waypost.stack.postgres import EmbeddedPostgres

pytestmark = pytest.mark.integration

ORCHESTRATOR_TABLES = {
    "workflows",
    "tasks",
    "outbox",
    "playbook_versions",
    "escalations",
    "audit_events",
    "dead_letters",
    "replay_requests",
    "replay_items",
    "circuit_breakers",
}
# Created by migration 0002 for the knowledge agent; its shape is the agents' business
# (tests/agents checks it) and it is deliberately not in the orchestrator's metadata.
AGENT_TABLES = {"kb_articles"}
# The HTTP app's own tables (review_ui/auth/tables.py), also created by the migrations.
AUTH_TABLES = {"users", "sessions", "api_tokens", "login_throttle"}
# The agent registry (waypost/agent_registry.py).
REGISTRY_TABLES = {"agent_instances"}
# Agent memory (waypost/memory/tables.py).
MEMORY_TABLES = {"agent_memories"}
# Governance: decision audit and rate/budget counters (waypost/governance/tables.py).
GOVERNANCE_TABLES = {"policy_decisions", "agent_actions", "agent_spend"}
# The agents' result ledger (waypost/runtime/recorded.py).
LEDGER_TABLES = {"agent_results"}
# The A2A bridge remembers the remote task of each bridged task (waypost/a2a/store.py).
BRIDGE_TABLES = {"a2a_bridge_tasks"}
# Schedules and the slots they fired (orchestrator/schedules/tables.py).
SCHEDULE_TABLES = {"schedules", "schedule_fires"}
# The LLM planner's attempts and claims (orchestrator/planning/tables.py).
PLANNING_TABLES = {"plan_attempts", "planner_claims"}
# Decision quality's drift state (orchestrator/quality/tables.py; importing it also
# declares the quality queries' indexes on tasks and escalations).
QUALITY_TABLES = {"decision_quality_drifts"}


def _combined() -> MetaData:
    """Every table the migrations create that has SQLAlchemy metadata."""
    combined = MetaData()
    for source in (
        orchestrator_metadata,
        auth_metadata,
        registry_metadata,
        memory_metadata,
        governance_metadata,
        recorded_metadata,
        bridge_metadata,
        schedule_metadata,
        planning_metadata,
        quality_metadata,
    ):
        for table in source.tables.values():
            table.to_metadata(combined)
    return combined


metadata = _combined()


@pytest.fixture
def fresh_schema(postgres: EmbeddedPostgres) -> Iterator[tuple[Engine, str]]:
    """An engine on a schema that does not exist yet (dropped afterwards)."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres.url(), schema=name, pool_size=1)
    yield engine, name
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def _tables(engine: Engine, schema: str) -> set[str]:
    return set(inspect(engine).get_table_names(schema=schema))


def _version_rows(engine: Engine, schema: str) -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(text(f'SELECT version_num FROM "{schema}".alembic_version'))
        return [row.version_num for row in rows]


def test_head_is_the_newest_revision() -> None:
    versions = Path(migrations.__file__).parent / "versions"
    newest = max(path.name.split("_")[0] for path in versions.glob("[0-9]*_*.py"))

    assert migrate.head() == newest


def test_a_fresh_schema_is_upgraded_to_head(fresh_schema: tuple[Engine, str]) -> None:
    engine, schema = fresh_schema
    assert migrate.current(engine, schema) is None

    reached = migrate.upgrade(engine, schema)

    assert reached == migrate.head()
    assert migrate.current(engine, schema) == migrate.head()
    assert _tables(engine, schema) == (
        ORCHESTRATOR_TABLES
        | AUTH_TABLES
        | AGENT_TABLES
        | REGISTRY_TABLES
        | MEMORY_TABLES
        | GOVERNANCE_TABLES
        | LEDGER_TABLES
        | BRIDGE_TABLES
        | SCHEDULE_TABLES
        | PLANNING_TABLES
        | QUALITY_TABLES
        | {"alembic_version"}
    )


def test_a_second_upgrade_changes_nothing(fresh_schema: tuple[Engine, str]) -> None:
    engine, schema = fresh_schema
    migrate.upgrade(engine, schema)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO workflows (id, type, status, input, accepted_at, updated_at) "
                "VALUES ('kept', 't', 'accepted', '{}', now(), now())"
            )
        )

    again = migrate.upgrade(engine, schema)

    assert again == migrate.head()
    assert _version_rows(engine, schema) == [migrate.head()]
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT id FROM workflows")).scalars().all()
    assert kept == ["kept"]  # nothing was dropped and re-created


def _not_an_agent_table(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """Alembic's include_name hook: compare every object except the agents' tables."""
    return not (type_ == "table" and name in AGENT_TABLES)


def test_the_migrated_schema_matches_the_orchestrator_metadata(engine: Engine, schema: str) -> None:
    with engine.connect() as connection:
        # No version_table_schema: the tables are reflected from the default schema (the
        # test schema, first on search_path) with schema None, and Alembic leaves its
        # version table out of the comparison only when the two schemas agree.
        context = MigrationContext.configure(
            connection,
            opts={
                "include_name": _not_an_agent_table,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        assert connection.execute(text("SELECT current_schema()")).scalar_one() == schema
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_the_comparison_does_notice_a_difference(engine: Engine) -> None:
    # Guards the test above: a comparison that saw nothing would also report nothing.
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE outbox ADD COLUMN stray text"))
        connection.execute(text("DROP INDEX workflows_accepted"))

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_name": _not_an_agent_table},
        )
        differences = compare_metadata(context, metadata)

    kinds = {(d[0], getattr(d[-1], "name", None)) for d in differences if isinstance(d, tuple)}
    assert ("remove_column", "stray") in kinds
    assert ("add_index", "workflows_accepted") in kinds
