"""Durations as configuration files write them (playbooks, policies): a number of seconds
(``30``, ``0.5``) or a number and a unit (``500ms``, ``30s``, ``1.5m``, ``1h``, ``1d``).

One grammar for every file, so a duration that works in one works in all; whether zero
is allowed is each file's own rule (its JSON Schema), not the parser's.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)")


def parse_duration(value: float | int | str) -> float:
    """Seconds from ``30``, ``0.5``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or ``"1d"``
    (ValueError for anything else: no spaces, no sign, a string needs its unit)."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: write seconds (30, 0.5) or a number and a unit "
            "(500ms, 30s, 5m, 1h, 1d)"
        )
    return float(match["number"]) * _UNIT_SECONDS[match["unit"]]
