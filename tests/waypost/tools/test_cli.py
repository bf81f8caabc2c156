"""`waypost tools ls`: servers, whether each is reachable, and their tools (the real
stdio test server, and an HTTP server nobody listens for)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.waypost.tools.conftest import Calls, server_file
from waypost.cli.main import main
from waypost.stack.process import free_port


def test_ls_lists_servers_their_tools_and_the_unreachable_ones(
    tmp_path: Path, calls: Calls
) -> None:
    directory = server_file(
        tmp_path / "tools", calls, http_url=f"http://127.0.0.1:{free_port()}/mcp", timeout="3s"
    )

    shown = CliRunner().invoke(main, ["tools", "ls", "--dir", str(directory)])
    as_json = CliRunner().invoke(main, ["tools", "ls", "local", "--dir", str(directory), "--json"])

    assert shown.exit_code == 1, shown.output  # one server is unreachable
    lines = shown.output.splitlines()
    assert lines[0].startswith("local  stdio  reachable, 5 tool(s)")
    assert "  echo  Repeat ``text`` ``times`` times." in lines
    assert any(
        line.startswith("web  unreachable: MCP server 'web': could not connect") for line in lines
    )
    assert as_json.exit_code == 0, as_json.output
    [local] = json.loads(as_json.output)
    assert local["reachable"] is True
    assert {
        "name": "crash",
        "description": "Ends the server's process in the middle of the call.",
    } in local["tools"]
    assert calls.of("echo") == []  # listing calls no tool


def test_ls_of_an_unknown_server_says_which_are_configured(tmp_path: Path, calls: Calls) -> None:
    directory = server_file(tmp_path / "tools", calls)

    shown = CliRunner().invoke(main, ["tools", "ls", "nope", "--dir", str(directory)])

    assert shown.exit_code == 1
    assert (
        "nope  unreachable: no MCP tool server 'nope' is configured (configured: local;"
        in shown.output
    )
