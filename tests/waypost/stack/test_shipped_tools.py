"""The built-in agents' tool directory `waypost up` configures, and the demo's lines
about tool calls and A2A (pure: no processes)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from waypost.settings import AgentSettings
from waypost.shipped_tools import (
    shipped_tool_dirs,
    tool_environ,
    with_packaged_tools,
    with_shipped,
)
from waypost.stack.demo import a2a_hint, tool_lines
from waypost.tools.config import ToolSet
from waypost.tools.transports import interpreter

ROOT = Path(__file__).resolve().parents[3]


def test_the_support_agents_ship_the_helpcentre_server() -> None:
    found = shipped_tool_dirs(["agents.support", "agents.billing", "waypost.llm"])

    # Once, and only where tools/ holds files (waypost/tools is a Python package).
    assert found == [ROOT / "agents" / "tools"]
    server = ToolSet(found).current()["helpcentre"]
    assert (server.command, server.args) == ("python", ("-m", "agents.helpcentre_mcp"))
    assert server.references() == ["WAYPOST_DATABASE_SCHEMA", "WAYPOST_DATABASE_URL"]


def test_configured_directories_come_after_the_shipped_ones_without_repeats(
    tmp_path: Path,
) -> None:
    shipped = ROOT / "agents" / "tools"

    assert with_shipped([shipped], [tmp_path, shipped]) == [shipped, tmp_path]


def test_the_demo_names_each_tool_call_from_the_reasoning_trace() -> None:
    workflow = {
        "tasks": [
            {"step": "triage", "reasoning": ["tool-less"]},
            {
                "step": "knowledge",
                "reasoning": [
                    "tool helpcentre/search_articles (arguments sha256 3f1c0a9e5b7d2c44): ok",
                    "kb-007 'Charged twice': similarity 0.61",
                ],
            },
        ]
    }

    assert tool_lines(workflow) == [
        "  knowledge called the MCP tool helpcentre/search_articles "
        "(governed as mcp:helpcentre/search_articles): ok"
    ]


def test_the_a2a_hint_is_a_runnable_curl_of_message_send() -> None:
    hint = a2a_hint("http://127.0.0.1:8123")

    assert "http://127.0.0.1:8123/.well-known/agent-card.json" in hint
    command = shlex.split(hint.splitlines()[-1])
    assert command[:3] == ["curl", "-s", "http://127.0.0.1:8123/a2a"]
    assert "Authorization: Bearer $TOKEN" in command
    request = json.loads(command[command.index("-d") + 1])
    assert request["method"] == "SendMessage"
    assert request["params"]["message"]["metadata"] == {"skill": "support.ticket"}


def test_a_worker_of_the_builtin_agents_configures_their_tools_itself(tmp_path: Path) -> None:
    settings = AgentSettings(tool_dirs=[tmp_path])

    # `waypost agent run agents.support` without WAYPOST_TOOL_DIRS still finds helpcentre.
    assert with_packaged_tools(settings, ["agents.support"]).tool_dirs == [
        ROOT / "agents" / "tools",
        tmp_path,
    ]
    # A module that is not a registered agent module gets only what is configured.
    assert with_packaged_tools(settings, ["tests.agents.conftest"]).tool_dirs == [tmp_path]


def test_tool_files_may_name_the_workers_own_database_however_it_was_found() -> None:
    settings = AgentSettings(database_schema="tenant_a")
    environ = tool_environ(settings, "postgresql://db.example/waypost")

    assert environ["WAYPOST_DATABASE_URL"] == "postgresql://db.example/waypost"
    assert environ["WAYPOST_DATABASE_SCHEMA"] == "tenant_a"


def test_python_in_a_tool_file_is_the_workers_own_interpreter() -> None:
    assert interpreter("python") == sys.executable
    assert interpreter("python3.9") == "python3.9"
    assert interpreter("/usr/bin/node") == "/usr/bin/node"
