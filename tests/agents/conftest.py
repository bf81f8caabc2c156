"""Fixtures of the agent tests: the shipped help-centre MCP server over real stdio."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.knowledge import TOOL_DIR
from tests.agents.environment import context
from waypost import AgentContext
from waypost.stack.postgres import EmbeddedPostgres
from waypost.tools.governed import Toolbox
from waypost.tools.setup import close_toolbox, open_toolbox


@pytest.fixture
def helpcentre(
    postgres: EmbeddedPostgres, schema: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Toolbox]:
    """A worker's toolbox of the shipped tool directory (agents/tools), its database
    variables pointing at this test's schema; the server starts on the first call."""
    # The shipped file runs `python -m agents.helpcentre_mcp`: the Python of these tests
    # (the venv's, with the dependencies), as `waypost up` puts it first on PATH.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{Path('/usr/bin')}")
    toolbox = open_toolbox(
        [TOOL_DIR],
        check_interval_s=60,
        environ={"WAYPOST_DATABASE_URL": postgres.url(), "WAYPOST_DATABASE_SCHEMA": schema},
    )
    assert toolbox is not None
    yield toolbox
    close_toolbox(toolbox)


def tool_context(
    capability: str, toolbox: Toolbox, resources: dict[type, Any] | None = None
) -> AgentContext:
    """A task context whose ``ctx.tools`` are ``toolbox``'s (no policies: all allowed)."""
    ctx = context(capability, resources)
    ctx.tools = toolbox.for_task(ctx.act, ctx.note)
    return ctx
