"""Tool-server files that ship with the built-in agent modules.

A package of agent modules may ship the MCP tool servers its agents call as YAML files
in a ``tools/`` directory beside its modules (the built-in agents: ``agents/tools/``,
the help centre's search). ``waypost up`` configures those directories for the agent
modules it runs by default, before ``WAYPOST_TOOL_DIRS`` and ``--tools``. The kernel
finds them by where the module is, without importing the package above it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from waypost import plugins
from waypost.settings import AgentSettings

TOOLS = "tools"


def shipped_tool_dirs(modules: Iterable[str]) -> list[Path]:
    """The ``tools/`` directories beside the given modules (those that have one that is
    not a Python package), each once, in order."""
    found: list[Path] = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        directory = (Path(spec.origin).parent / TOOLS).resolve()
        # A Python package called tools (waypost/tools, say) holds code, not servers.
        is_package = (directory / "__init__.py").exists()
        if directory.is_dir() and not is_package and directory not in found:
            found.append(directory)
    return found


def with_shipped(shipped: Iterable[Path], configured: Iterable[Path]) -> list[Path]:
    """``shipped`` then ``configured``, without a directory twice."""
    result: list[Path] = []
    for directory in [*shipped, *configured]:
        if directory.resolve() not in {d.resolve() for d in result}:
            result.append(directory)
    return result


def tool_environ(settings: AgentSettings, database_url: str | None) -> dict[str, str]:
    """What ``${NAME}`` references in tool-server files resolve against: this process's
    environment, plus the worker's own database (``WAYPOST_DATABASE_URL``,
    ``WAYPOST_DATABASE_SCHEMA``) however it was found (stack.json, defaults), so a
    tool server can be given the database its agents use."""
    environ = dict(os.environ)
    if database_url:
        environ["WAYPOST_DATABASE_URL"] = database_url
    environ["WAYPOST_DATABASE_SCHEMA"] = settings.database_schema
    return environ


def with_packaged_tools(settings: AgentSettings, modules: Sequence[str]) -> AgentSettings:
    """``settings`` with the tool-server directories that the packaged agent modules
    among ``modules`` ship (``waypost.shipped_tools``) before ``WAYPOST_TOOL_DIRS``: the
    built-in agents find their tool servers without configuration."""
    packaged = [m for m in modules if m in plugins.agent_module_names()]
    shipped = shipped_tool_dirs(packaged)
    if not shipped:
        return settings
    return settings.model_copy(update={"tool_dirs": with_shipped(shipped, settings.tool_dirs)})
