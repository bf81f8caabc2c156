"""Finding the agents a module defines."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from waypost.errors import AgentDefinitionError, ConfigError
from waypost.sdk import Agent


def load_agents(modules: Sequence[str]) -> list[Agent[Any, Any]]:
    """Every ``@agent`` defined in (or imported into) these modules, one per capability."""
    found: dict[str, Agent[Any, Any]] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"cannot import agent module {name!r}: {exc}. Check the name and that its "
                "directory is on PYTHONPATH (or installed)."
            ) from None
        agents = [value for value in vars(module).values() if isinstance(value, Agent)]
        if not agents:
            raise ConfigError(f"agent module {name!r} defines no @agent functions")
        for agent in agents:
            other = found.get(agent.capability)
            if other is not None and other is not agent:
                raise AgentDefinitionError(
                    f"two different agents declare capability {agent.capability!r} "
                    f"({other.handler.__module__} and {agent.handler.__module__})"
                )
            found[agent.capability] = agent
    return list(found.values())
