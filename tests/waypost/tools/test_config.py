"""Tool-server files: what they may say, how their errors read, reloading. Pure: files
in a temporary directory, no server is contacted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from waypost.tools.config import ToolSet, load_text, resolve
from waypost.tools.errors import InvalidToolServers, ToolConfigError
from waypost.tools.model import action_name

GOOD = """\
servers:
  helpdesk:
    command: python
    args: [-m, helpdesk]
    env: {HELPDESK_TOKEN: "${HELPDESK_TOKEN}"}
    timeout: 500ms
  weather:
    url: https://weather.example.com/mcp
    headers: {Authorization: "Bearer ${WEATHER_TOKEN}", X-Tenant: acme}
"""


def test_a_valid_file_gives_stdio_and_http_servers_with_their_timeouts() -> None:
    servers = load_text(GOOD, source="tools/support.yaml")

    helpdesk, weather = servers["helpdesk"], servers["weather"]
    assert (helpdesk.transport, helpdesk.command, helpdesk.args) == (
        "stdio",
        "python",
        ("-m", "helpdesk"),
    )
    assert helpdesk.timeout == 0.5
    assert (weather.transport, weather.timeout) == ("http", 30.0)
    assert weather.references() == ["WEATHER_TOKEN"]
    assert helpdesk.source == "tools/support.yaml"


def test_errors_name_the_file_the_field_and_the_line() -> None:
    text = """\
servers:
  helpdesk:
    command: python
    url: http://localhost:1/mcp
  weather:
    url: https://weather.example.com/mcp
    timeout: soon
    retries: 3
  Bad Name:
    command: x
"""
    with pytest.raises(ToolConfigError) as caught:
        load_text(text, source="tools/bad.yaml")

    message = str(caught.value)
    assert "tools/bad.yaml: servers.helpdesk (line 3): give either command" in message
    assert "servers.weather.timeout (line 7):" in message
    assert "servers.weather.retries (line 8): Extra inputs are not permitted" in message
    assert "servers.Bad Name (line 10): 'Bad Name' is not a server name" in message


def test_a_literal_secret_is_refused_and_references_resolve_from_the_environment() -> None:
    text = """\
servers:
  weather:
    url: https://weather.example.com/mcp
    headers: {Authorization: Bearer sk-live-123}
"""
    with pytest.raises(ToolConfigError, match=r"servers.weather \(line 3\): headers.Authorization"):
        load_text(text, source="tools/secret.yaml")
    with pytest.raises(ToolConfigError, match="url cannot hold a"):
        load_text("servers:\n  w: {url: 'https://x/mcp?key=${KEY}'}\n", source="t.yaml")
    assert resolve("Bearer ${T}", {"T": "abc"}) == "Bearer abc"
    with pytest.raises(KeyError, match="MISSING"):
        resolve("${MISSING}", {})


def test_not_yaml_or_not_a_servers_mapping_is_an_error_with_a_line() -> None:
    with pytest.raises(ToolConfigError, match=r"\(file\) \(line 3\): not valid YAML"):
        load_text("servers:\n  a: {command: x\n  b: 1\n", source="t.yaml")
    with pytest.raises(ToolConfigError, match="one key, servers"):
        load_text("helpdesk: {command: x}\n", source="t.yaml")


def test_reload_picks_up_a_new_server_and_keeps_the_last_good_version(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("servers:\n  one: {command: x}\n")
    toolset = ToolSet([tmp_path], check_interval_s=3600)
    assert sorted(toolset.current()) == ["one"]

    (tmp_path / "b.yml").write_text("servers:\n  two: {url: 'http://localhost:9/mcp'}\n")
    assert toolset.reload() == []
    assert sorted(toolset.current()) == ["one", "two"]

    (tmp_path / "b.yml").write_text("servers:\n  two: {url: ftp://nope, extra: 1}\n")
    errors = toolset.reload()
    assert [e.source for e in errors] == [str(tmp_path / "b.yml")]
    assert sorted(toolset.current()) == ["one", "two"]  # its last good version stays
    assert toolset.current()["two"].url == "http://localhost:9/mcp"

    (tmp_path / "a.yaml").unlink()
    toolset.reload()
    assert sorted(toolset.current()) == ["two"]


def test_invalid_files_at_start_up_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("servers:\n  one: {}\n")
    (tmp_path / "b.yaml").write_text("servers:\n  one: {command: x}\n  two: {command: y, url: z}\n")

    with pytest.raises(InvalidToolServers) as caught:
        ToolSet([tmp_path])

    assert [e.source for e in caught.value.errors] == [
        str(tmp_path / "a.yaml"),
        str(tmp_path / "b.yaml"),
    ]


def test_a_tool_call_is_an_action_policies_can_name() -> None:
    assert action_name("helpdesk", "search") == "mcp:helpdesk/search"
    assert action_name("crm", "getContact/v2") == "mcp:crm/getcontact_v2"


def test_a_rewrite_in_the_same_timestamp_tick_is_still_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("servers:\n  one: {command: x}\n")
    toolset = ToolSet([tmp_path], check_interval_s=3600)
    stat = path.stat()

    # Same size, and the same modification time as the first read saw (a coarse clock).
    path.write_text("servers:\n  two: {command: x}\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert toolset.reload() == []
    assert sorted(toolset.current()) == ["two"]
