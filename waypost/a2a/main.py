"""`waypost a2a bridge`: an agent worker whose agents are the bridged capabilities.

It is `waypost agent run` with agents generated from bridge files instead of imported
from modules (``waypost.runtime.main.serve``): the same settings (broker, namespace,
database, policies, tool servers), consumer groups, retries, dead letters, result
ledger, registry heartbeats, cancellation listener and telemetry.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from waypost import service
from waypost.a2a.bridge import BridgeKit, bridge_agent
from waypost.a2a.config import Bridge, load_bridges
from waypost.a2a.errors import InvalidBridges
from waypost.a2a.metrics import BridgeMetrics
from waypost.errors import ConfigError
from waypost.runtime.main import run_worker
from waypost.sdk import Agent
from waypost.settings import AgentSettings, load

# The database is optional, as for agents: without one, remote tasks are remembered
# in the process only.
SERVICE = service.Service("a2a-bridge", database=False)


def bridges_of(paths: Sequence[Path]) -> dict[str, Bridge]:
    """The bridges of these files and directories; ConfigError naming every invalid
    file, field and line."""
    try:
        return load_bridges(paths)
    except InvalidBridges as exc:
        raise ConfigError(f"invalid A2A bridge configuration:\n{exc}") from None


def main(paths: Sequence[Path], settings: AgentSettings | None = None) -> int:
    """Run the bridges of ``paths`` until SIGTERM/SIGINT."""
    settings = settings or load(AgentSettings)
    bridges = bridges_of(paths)  # before anything connects: a wrong file fails at once

    def agents(process: service.Started) -> list[Agent[Any, Any]]:
        telemetry = process.telemetry
        kit = BridgeKit(os.environ, telemetry.tracing, BridgeMetrics(telemetry.registry))
        return [bridge_agent(bridge, kit) for bridge in bridges.values()]

    return run_worker(SERVICE, settings, agents)
