"""Finding the agents of the modules a worker is told to run."""

from __future__ import annotations

import re

import pytest

from tests.support import agents as support_agents
from waypost.errors import AgentDefinitionError, ConfigError
from waypost.runtime.loading import load_agents

MODULES = "tests.waypost.runtime.modules"


def test_the_agents_of_a_module_are_found() -> None:
    (echo,) = load_agents(["tests.support.agents"])

    assert echo is support_agents.echo
    assert echo.capability == "echo"


def test_an_agent_imported_into_several_modules_is_loaded_once() -> None:
    agents = load_agents(["tests.support.agents", f"{MODULES}.reexports_echo"])

    assert sorted(a.capability for a in agents) == ["count", "echo"]
    assert [a for a in agents if a.capability == "echo"] == [support_agents.echo]


def test_a_module_without_agents_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'{MODULES}.no_agents' defines no")):
        load_agents([f"{MODULES}.no_agents"])


def test_an_unknown_module_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        load_agents(["tests.waypost.runtime.modules.does_not_exist"])

    message = str(caught.value)
    assert "cannot import agent module 'tests.waypost.runtime.modules.does_not_exist'" in message
    assert "PYTHONPATH" in message


def test_two_different_agents_for_one_capability_are_refused() -> None:
    with pytest.raises(AgentDefinitionError) as caught:
        load_agents(["tests.support.agents", f"{MODULES}.other_echo"])

    message = str(caught.value)
    assert "two different agents declare capability 'echo'" in message
    assert "tests.support.agents" in message
    assert f"{MODULES}.other_echo" in message
