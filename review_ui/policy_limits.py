"""Where the governance page and ``GET /api/v1/budgets`` find the budgets' limits: the
policy files, when this HTTP app is given their directories (``policy_dirs``, the same
setting the agent workers read). Without them the app shows what was spent and says
where the limits are.

The policy set is loaded on first use and re-read like the workers' (a changed file
applies without a restart); one per process and list of directories.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from waypost.governance.engine import Policies
from waypost.governance.errors import InvalidPolicies
from waypost.governance.policyset import PolicySet
from waypost.settings import HttpSettings

NOT_READ = (
    "This HTTP app reads no policy files, so it cannot show the limits: they are the "
    "budgets.per_day of the policy files in the agent workers' WAYPOST_POLICY_DIRS "
    "(docs/governance.md)."
)

_lock = threading.Lock()
_sets: dict[tuple[Path, ...], PolicySet] = {}


@dataclass(frozen=True, slots=True)
class Limits:
    """The policies in force (None: unknown) and where they come from, or why unknown."""

    policies: Policies | None
    source: str


def limits_of(settings: HttpSettings) -> Limits:
    """The policies whose budgets the app can show."""
    # HttpSettings has policy_dirs only once the app is configured with them.
    directories: Sequence[Path] = tuple(getattr(settings, "policy_dirs", None) or ())
    if not directories:
        return Limits(None, NOT_READ)
    shown = ", ".join(str(d) for d in directories)
    try:
        policy_set = _policy_set(tuple(directories))
    except InvalidPolicies as exc:
        return Limits(None, f"The policy files in {shown} cannot be read: {exc}")
    return Limits(policy_set.current(), f"Limits from the policy files in {shown}.")


def _policy_set(directories: tuple[Path, ...]) -> PolicySet:
    with _lock:
        found = _sets.get(directories)
        if found is None:
            found = _sets[directories] = PolicySet(directories)
        return found
