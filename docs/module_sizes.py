"""How big Waypost's modules are: `python docs/module_sizes.py [--check]`.

Counts the lines of every module of the packages (tests, benchmarks and docs excluded),
prints the median and the largest, and lists each module over the limit with the reason
it gives for its size: a comment ``# Longer than 400 lines: <why>`` among its first 20
lines. With ``--check`` it exits 1 if a module over the limit gives no reason
(tests/test_module_sizes.py runs that check in `make test`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("waypost", "orchestrator", "agents", "review_ui", "schemas", "migrations")
LIMIT = 400
MARKER = "# Longer than 400 lines:"


@dataclass(frozen=True)
class Module:
    """A module, its length in lines and the reason it gives for its length (if any)."""

    path: Path
    lines: int
    reason: str | None


def modules(root: Path = ROOT) -> list[Module]:
    """Every module of the packages (empty ``__init__.py`` files left out)."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
            if lines == 0:
                continue
            head = text.splitlines()[:20]
            reason = next(
                (line.removeprefix(MARKER).strip() for line in head if line.startswith(MARKER)),
                None,
            )
            found.append(Module(path.relative_to(root), lines, reason))
    return found


def unexplained(found: list[Module]) -> list[Module]:
    """The modules over the limit that do not say why."""
    return [m for m in found if m.lines > LIMIT and not m.reason]


def main() -> int:
    """Print the sizes; with --check, fail on a long module without a reason."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on an unexplained one")
    args = parser.parse_args()
    found = modules()
    sizes = [m.lines for m in found]
    print(
        f"{len(found)} modules, median {statistics.median(sizes):.0f} lines, "
        f"mean {statistics.mean(sizes):.0f}, largest {max(sizes)}"
    )
    for module in sorted(found, key=lambda m: -m.lines):
        if module.lines <= LIMIT:
            break
        print(f"  {module.lines:5d}  {module.path}  {module.reason or '(no reason given)'}")
    missing = unexplained(found)
    if args.check and missing:
        print(
            f"{len(missing)} module(s) over {LIMIT} lines without a `{MARKER} ...` comment",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
