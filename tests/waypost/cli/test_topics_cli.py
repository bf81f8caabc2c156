"""`waypost topics --create`: provisioning before any service starts (a Helm hook)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from waypost.cli.main import main

pytestmark = pytest.mark.integration


def run(broker: Any, namespace: str, tmp_path: Path, *args: str, **env: str) -> Any:
    return CliRunner(
        env={
            "WAYPOST_KAFKA_BOOTSTRAP": broker.bootstrap,
            "WAYPOST_NAMESPACE": namespace,
            "WAYPOST_DATA_DIR": str(tmp_path),
            **env,
        }
    ).invoke(main, ["topics", *args])


def test_create_makes_every_topic_of_the_playbooks_and_agents_with_their_partitions(
    broker: Any, namespace: str, tmp_path: Path
) -> None:
    result = run(
        broker,
        namespace,
        tmp_path,
        "--create",
        "--agents",
        "agents.onboarding",
        WAYPOST_TOPIC_PARTITIONS="2",
        WAYPOST_TOPIC_PARTITION_OVERRIDES='{"tasks.payroll.setup": 6}',
    )
    assert result.exit_code == 0, result.output
    assert "created " in result.output
    listed = json.loads(run(broker, namespace, tmp_path, "--json").output)
    assert listed[f"{namespace}.tasks.payroll.setup"] == 6
    assert listed[f"{namespace}.tasks.payroll.setup.dlq"] == 2
    assert listed[f"{namespace}.goals"] == 2
    # The built-in playbooks' capabilities too (support.ticket's triage).
    assert f"{namespace}.tasks.triage" in listed
    again = run(broker, namespace, tmp_path, "--create", "--agents", "agents.onboarding")
    assert again.exit_code == 0
    assert "created 0 topic(s)" in again.output


def test_agents_without_create_is_a_usage_error(
    broker: Any, namespace: str, tmp_path: Path
) -> None:
    result = run(broker, namespace, tmp_path, "--agents", "agents.support")
    assert result.exit_code == 2
    assert "--agents goes with --create" in result.output
