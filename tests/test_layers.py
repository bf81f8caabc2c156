"""The layer order is a contract `make lint` checks (`lint-imports`, contracts in
pyproject.toml), and the check bites: an import against it, added to a copy of the
packages, fails the check naming the import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "waypost", "orchestrator", "agents", "review_ui", "migrations")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The packages and the contracts, copied where they can be broken."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    # lint-imports finds the packages from its working directory first, so it reads the
    # copy, not the checkout the virtualenv's editable install points at.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        capture_output=True,
        text=True,
        cwd=where,
        timeout=120,
    )


def add_import(module: Path, statement: str) -> None:
    """Append an import to a module (at the end: its docstring stays first)."""
    module.write_text(module.read_text() + f"\n{statement}  # noqa\n")


def test_the_packages_keep_every_contract_as_they_are(copy: Path) -> None:
    result = lint_imports(copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# Each adds an import to a package's __init__.py (the modules least likely to move).
@pytest.mark.parametrize(
    ("package", "statement", "contract", "named"),
    [
        # The kernel imports nothing above it.
        ("waypost", "import orchestrator", "Layers", "waypost -> orchestrator"),
        ("waypost/cli", "import review_ui", "Layers", "waypost.cli -> review_ui"),
        # The orchestrator and the agents are independent of each other.
        ("agents", "import orchestrator", "Layers", "agents -> orchestrator"),
        # The HTTP app does not reach into the orchestrator's service.
        (
            "review_ui",
            "import orchestrator.service",
            "The HTTP app does not import the orchestrator service",
            "review_ui -> orchestrator.service",
        ),
        # Services find their endpoints without the embedded stack.
        (
            "orchestrator",
            "import waypost.stack",
            "without the embedded stack",
            "orchestrator -> waypost.stack",
        ),
        # The workflow state machine stays pure.
        (
            "orchestrator/workflow",
            "import sqlalchemy",
            "The pure cores",
            "orchestrator.workflow -> sqlalchemy",
        ),
        # Kafka clients come from one package.
        (
            "review_ui",
            "import confluent_kafka",
            "Only waypost.bus.kafka talks to confluent_kafka",
            "review_ui -> confluent_kafka",
        ),
        # Protocol SDKs stay behind their adapters.
        ("orchestrator", "import a2a", "Only the A2A bridge", "orchestrator -> a2a"),
        # Migrations import the kernel only.
        (
            "migrations",
            "import orchestrator",
            "Migrations import the kernel only",
            "migrations -> orchestrator",
        ),
    ],
)
def test_an_import_against_the_contract_fails_the_check_naming_it(
    copy: Path, package: str, statement: str, contract: str, named: str
) -> None:
    add_import(copy / package / "__init__.py", statement)

    result = lint_imports(copy)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
    assert named in broken, result.stdout
