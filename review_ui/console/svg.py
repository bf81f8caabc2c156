"""A workflow's step graph laid out for an inline SVG (pure: no I/O, no markup).

Layered layout: a step's column is one more than the largest column of the steps it
depends on (roots in column 0); within a column steps keep their playbook order. The
template draws the result; colours come from CSS classes named after the statuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NODE_WIDTH = 156
NODE_HEIGHT = 38
COLUMN_GAP = 56
ROW_GAP = 18
MARGIN = 8
LABEL_CHARS = 20


@dataclass(frozen=True, slots=True)
class StepNode:
    """A step to draw: its box and what it says."""

    name: str
    label: str
    status: str
    current: bool
    column: int
    row: int
    x: int
    y: int
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT

    @property
    def text_x(self) -> int:
        """Where the label is centred."""
        return self.x + self.width // 2

    @property
    def text_y(self) -> int:
        """The label's baseline, roughly centred."""
        return self.y + self.height // 2 + 5


@dataclass(frozen=True, slots=True)
class DependencyEdge:
    """An arrow from a step to one that depends on it, as SVG path data."""

    source: str
    target: str
    path: str


@dataclass(frozen=True, slots=True)
class Graph:
    """The laid-out graph and the size of its picture."""

    nodes: tuple[StepNode, ...]
    edges: tuple[DependencyEdge, ...]
    width: int
    height: int


def columns(steps: Sequence[tuple[str, Sequence[str]]]) -> dict[str, int]:
    """Each step's column: 1 + the largest column of its dependencies (unknown
    dependencies are ignored; a cycle, which playbooks cannot have, is cut)."""
    depends = {name: [d for d in deps if d != name] for name, deps in steps}
    found: dict[str, int] = {}

    def column(name: str, visiting: frozenset[str]) -> int:
        if name in found:
            return found[name]
        parents = [d for d in depends.get(name, ()) if d in depends and d not in visiting]
        value = 1 + max((column(d, visiting | {name}) for d in parents), default=-1)
        found[name] = value
        return value

    for name, _ in steps:
        column(name, frozenset())
    return found


def layout(
    steps: Sequence[tuple[str, Sequence[str]]],
    statuses: Mapping[str, str],
    current: str | None = None,
) -> Graph:
    """Lay out ``steps`` (name, depends_on) in playbook order; ``statuses`` by step name
    (missing: "pending"); ``current`` is the step under review."""
    by_column = columns(steps)
    rows: dict[int, int] = {}
    nodes: dict[str, StepNode] = {}
    for name, _ in steps:
        column = by_column[name]
        row = rows.get(column, 0)
        rows[column] = row + 1
        nodes[name] = StepNode(
            name=name,
            label=name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…",
            status=statuses.get(name, "pending"),
            current=name == current,
            column=column,
            row=row,
            x=MARGIN + column * (NODE_WIDTH + COLUMN_GAP),
            y=MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        )
    edges = tuple(
        _edge(nodes[dependency], nodes[name])
        for name, depends_on in steps
        for dependency in depends_on
        if dependency in nodes and dependency != name
    )
    width = MARGIN * 2 + max((n.x + n.width for n in nodes.values()), default=0) - MARGIN
    height = MARGIN * 2 + max((n.y + n.height for n in nodes.values()), default=0) - MARGIN
    return Graph(tuple(nodes.values()), edges, max(width, 0), max(height, 0))


def _edge(source: StepNode, target: StepNode) -> DependencyEdge:
    x1, y1 = source.x + source.width, source.y + source.height // 2
    x2, y2 = target.x, target.y + target.height // 2
    bend = max((x2 - x1) // 2, 12)
    path = f"M {x1} {y1} C {x1 + bend} {y1}, {x2 - bend} {y2}, {x2 - 2} {y2}"
    return DependencyEdge(source.name, target.name, path)
