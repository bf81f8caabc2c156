"""Giving a worker process its tool servers: load the files, start the client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from waypost.errors import ConfigError
from waypost.tools.client import ToolClient
from waypost.tools.config import ToolSet
from waypost.tools.errors import InvalidToolServers
from waypost.tools.governed import Toolbox
from waypost.tools.metrics import ToolMetrics


def open_toolbox(
    directories: Sequence[Path],
    *,
    check_interval_s: float,
    environ: Mapping[str, str],
    metrics: ToolMetrics | None = None,
) -> Toolbox | None:
    """The toolbox of the servers in ``directories`` with its client started (None
    without directories); ConfigError naming every invalid file, field and line. Close
    it with ``close_toolbox``."""
    if not directories:
        return None
    try:
        toolset = ToolSet(directories, check_interval_s=check_interval_s)
    except InvalidToolServers as exc:
        raise ConfigError(f"WAYPOST_TOOL_DIRS: invalid tool servers:\n{exc}") from None
    client = ToolClient(toolset.current, environ=environ)
    client.start()
    return Toolbox(client, metrics)


def close_toolbox(toolbox: Toolbox | None) -> None:
    """End the toolbox's sessions (stdio servers exit) and its event loop thread."""
    if toolbox is not None and isinstance(toolbox.client, ToolClient):
        toolbox.client.close()
