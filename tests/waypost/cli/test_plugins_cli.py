"""Commands and providers plugged into `waypost` by entry points (waypost/plugins.py):
the packages' own commands are found there, and a broken installation fails in one line
naming the entry point instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from waypost.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
MISSING = "waypost_no_such_package"


def installed(where: Path, entry_points: str) -> Path:
    """A distribution (only its metadata) declaring ``entry_points``, found on ``where``."""
    info = where / "waypost_test_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: waypost-test-plugin\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(entry_points)
    return where


def waypost(*args: str, path: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m waypost ARGS` with ``path`` on PYTHONPATH."""
    paths = [str(path)] if path else []
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return subprocess.run(
        [sys.executable, "-m", "waypost", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths), **env},
        timeout=60,
    )


def test_the_packages_commands_are_plugged_in_and_loaded_only_when_used() -> None:
    probe = (
        "import sys\n"
        "from waypost.cli.main import main\n"
        "def above():\n"
        "    return sorted(m for m in sys.modules if m.split('.')[0] in "
        "('orchestrator', 'review_ui', 'agents'))\n"
        "print(above())\n"
        "try:\n"
        "    main(['playbooks', 'check'])\n"
        "except SystemExit as exit:\n"
        "    print(exit.code, above())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[]"  # the kernel's command imports nothing above the kernel
    assert "schedule(s) OK" in result.stdout
    assert "support.ticket v" in result.stdout
    exit_code, modules = lines[-1].split(" ", 1)
    assert exit_code == "0"
    assert "'orchestrator.cli'" in modules
    assert "review_ui" not in modules  # only the command that ran was loaded


def test_help_lists_the_plugged_in_commands_beside_the_kernels() -> None:
    result = CliRunner().invoke(main, ["--help"])

    assert result.exit_code == 0, result.output
    commands = [
        line.split()[0]
        for line in result.output.split("Commands:", 1)[1].splitlines()
        if line.strip()
    ]
    for name in ("orchestrator", "indexer", "playbooks", "serve", "user", "token"):
        assert name in commands
    assert commands == sorted(commands)
    user_help = CliRunner().invoke(main, ["user", "add", "--help"])
    assert user_help.exit_code == 0
    assert "--password-stdin" in user_help.output


def test_a_command_whose_package_cannot_be_imported_fails_in_one_line_naming_it(
    tmp_path: Path,
) -> None:
    path = installed(tmp_path, f"[waypost.commands]\nbroken = {MISSING}.cli:broken\n")

    result = waypost("broken", "--some-option", path=path)
    listed = waypost("--help", path=path)
    others = waypost("playbooks", "--help", path=path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: entry point waypost.commands:broken")
    assert f"No module named '{MISSING}'" in result.stderr
    assert "reinstall" in result.stderr
    assert listed.returncode == 0, listed.stderr
    assert "broken" in listed.stdout
    assert "unavailable" in listed.stdout
    assert others.returncode == 0, others.stderr


def test_an_entry_point_that_is_not_a_command_is_refused_by_name(tmp_path: Path) -> None:
    path = installed(tmp_path, "[waypost.commands]\nnotone = waypost.topics:Topics\n")

    result = waypost("notone", path=path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "entry point waypost.commands:notone" in result.stderr
    assert "is not a click command" in result.stderr


@pytest.mark.integration
def test_topics_create_with_a_broken_capability_provider_names_it(
    broker: Any, namespace: str, tmp_path: Path
) -> None:
    path = installed(tmp_path / "site", f"[waypost.capabilities]\nbroken = {MISSING}:caps\n")

    result = waypost(
        "topics",
        "--create",
        path=path,
        WAYPOST_KAFKA_BOOTSTRAP=broker.bootstrap,
        WAYPOST_NAMESPACE=namespace,
        WAYPOST_DATA_DIR=str(tmp_path),
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "entry point waypost.capabilities:broken" in result.stderr
    assert f"No module named '{MISSING}'" in result.stderr
