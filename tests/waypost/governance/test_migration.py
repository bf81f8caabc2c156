"""Migration 0013 on the real PostgreSQL: its downgrade removes exactly the governance
tables, and upgrading again restores them."""

from __future__ import annotations

from importlib import resources

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

GOVERNANCE_TABLES = {"policy_decisions", "agent_actions", "agent_spend"}

pytestmark = pytest.mark.integration


def _migrate(engine: Engine, schema: str, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    config.attributes["schema"] = schema
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_0013_downgrades_and_upgrades_cleanly(engine: Engine, schema: str) -> None:
    tables = set(inspect(engine).get_table_names(schema=schema))
    assert tables >= GOVERNANCE_TABLES

    _migrate(engine, schema, "0013", down=True)  # later revisions' tables go first
    at_0013 = set(inspect(engine).get_table_names(schema=schema))
    _migrate(engine, schema, "0012", down=True)
    assert set(inspect(engine).get_table_names(schema=schema)) == at_0013 - GOVERNANCE_TABLES

    _migrate(engine, schema, "head")
    assert set(inspect(engine).get_table_names(schema=schema)) == tables
