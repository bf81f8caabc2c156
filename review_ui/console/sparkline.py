"""A day-by-day rate laid out as a small inline SVG trend chart (pure: no I/O, no markup).

Rates are shares in [0, 1] drawn on a fixed scale, so the charts of every row compare;
a day without a value (nothing to divide by) breaks the line instead of drawing a zero.
The template draws the result; colours come from CSS classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 72
HEIGHT = 22
PAD = 2


@dataclass(frozen=True, slots=True)
class Point:
    """A day with a value, where it is drawn."""

    x: float
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Sparkline:
    """What to draw: polylines (``points`` attributes) and the last day's dot."""

    width: int
    height: int
    segments: tuple[str, ...]
    last: Point | None
    baseline: float  # the y of 0

    @property
    def empty(self) -> bool:
        """True when no day had a value."""
        return self.last is None


def sparkline(
    values: Sequence[float | None],
    labels: Sequence[str],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Sparkline:
    """Lay out ``values`` (one per day, oldest first; None: no value that day) with each
    day's ``labels`` (what a hover shows), spread over ``width``."""
    step = (width - 2 * PAD) / max(len(values) - 1, 1)
    span = height - 2 * PAD
    segments: list[str] = []
    current: list[str] = []
    last: Point | None = None
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        if value is None:
            if current:
                segments.append(" ".join(current))
            current = []
            continue
        clamped = min(max(value, 0.0), 1.0)
        x = round(PAD + index * step, 1)
        y = round(PAD + (1.0 - clamped) * span, 1)
        current.append(f"{x},{y}")
        last = Point(x, y, label)
    if current:
        segments.append(" ".join(current))
    # A lone value is a line of no length: the dot shows it.
    return Sparkline(width, height, tuple(segments), last, float(PAD + span))
