"""The documentation that is generated from code is up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_configuration_reference_matches_the_settings_classes() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "waypost.docgen"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout

    assert (ROOT / "docs" / "configuration.md").read_text() == generated, (
        "docs/configuration.md is stale: run `make docs`"
    )
