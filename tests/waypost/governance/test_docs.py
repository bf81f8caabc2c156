"""docs/governance.md shows what the code does: its example policies load, its example
prints what the page says, and its error listing is what the loader reports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from waypost.governance import PolicyError, load_file

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "governance.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", PAGE, flags=re.DOTALL)


def _write_policies(directory: Path) -> list[Path]:
    written = []
    for language, body in BLOCKS:
        match = re.match(r"# (policies/[\w.-]+\.yaml):", body)
        if language == "yaml" and match:
            path = directory / match[1]
            path.parent.mkdir(exist_ok=True)
            path.write_text(body)
            written.append(path)
    return written


def test_the_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    assert len(_write_policies(tmp_path)) == 2
    program = next(body for language, body in BLOCKS if language == "python")
    shown = next(body for language, body in BLOCKS if language == "text" and "(allowed)" in body)

    printed = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT)},
    ).stdout

    assert printed == shown


def test_the_error_listing_is_what_the_loader_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    path = Path("policies/reply.yaml")
    path.write_text(
        "version: 0\napplies_to: {agents: [reply]}\nactions:\n  deny:\n    - Delete Customer\n"
        "rate_limits:\n  - {action: send_email, limit: 10, per: 1 minute}\nsurprise: true\n"
    )
    shown = next(body for language, body in BLOCKS if body.startswith("invalid policy"))

    with pytest.raises(PolicyError) as caught:
        load_file(path)

    assert str(caught.value) + "\n" == shown


def test_the_runtime_example_is_the_code_and_policy_in_docs_examples() -> None:
    agent = next(body for language, body in BLOCKS if language == "python" and "ctx.act(" in body)
    policy = next(body for language, body in BLOCKS if body.startswith("# What the refunds"))

    assert agent in (ROOT / "docs" / "examples" / "refunds.py").read_text()
    assert (
        policy
        == (ROOT / "docs" / "examples" / "governance" / "policies" / "refunds.yaml").read_text()
    )
