"""What the dead-letter workbench shows: bytes as text, payload diffs, dry-run previews,
the histogram and the facets (pure functions of stored data)."""

from __future__ import annotations

import base64
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Literal

import orjson

from orchestrator.dead_letters.orders import Prepared, ReplayOrder
from orchestrator.dead_letters.records import replay_record
from orchestrator.store.dead_letters import DeadLetter
from orchestrator.store.replays import RequestState
from review_ui.console.dead_letter_forms import (
    FACETS,
    DlqQuery,
)
from review_ui.console.render import pretty_json
from waypost.bus.records import OutgoingRecord
from waypost.events.modes import claims_cloudevent


@dataclass(frozen=True, slots=True)
class Shown:
    """Bytes as a person reads them: UTF-8 text, or base64 (and marked so) when not."""

    text: str | None
    base64: bool = False


def shown(value: bytes | None) -> Shown:
    """``value`` as text, or as base64 when it is not UTF-8."""
    if value is None:
        return Shown(None)
    try:
        return Shown(value.decode())
    except UnicodeDecodeError:
        return Shown(base64.b64encode(value).decode(), base64=True)


def payload_text(letter: DeadLetter) -> Shown:
    """The value as pretty JSON when it is JSON, else as text (or base64)."""
    if letter.payload is not None:
        return Shown(pretty_json(letter.payload))
    return shown(letter.value)


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a diff: added, removed, unchanged, or a hunk header."""

    kind: Literal["add", "remove", "same", "hunk"]
    text: str


def line_diff(before: str, after: str, context: int = 3) -> list[DiffLine]:
    """A unified line diff of two texts (empty when they are equal)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=context)
    kinds: dict[str, Literal["add", "remove", "same", "hunk"]] = {
        "+": "add",
        "-": "remove",
        "@": "hunk",
    }
    return [DiffLine(kinds.get(line[:1], "same"), line) for line in islice(lines, 2, None)]


@dataclass(frozen=True, slots=True)
class Preview:
    """What replaying one dead letter would do, as the dry run shows it."""

    dead_letter_id: int
    outcome: str
    verdict: str
    topic: str | None
    key: Shown
    headers: list[tuple[str, Shown]]
    payload: str | None
    diff: list[DiffLine]
    edited: bool
    header_changes: tuple[tuple[str, str | None], ...] = ()


def preview(prepared: Prepared, order: ReplayOrder) -> Preview:
    """The dry run's view of one dead letter: the record it would send (also when that
    record is invalid, to show why), the check's verdict, and the edit's diff."""
    letter, edit = prepared.dead_letter, order.edit
    before = payload_text(letter).text or ""
    # An edit applies to a JSON value (or to none); the Replayer refuses any other.
    applies = edit is not None and (letter.payload is not None or not letter.value)
    after = pretty_json(edit.apply(letter.payload)) if edit is not None and applies else before
    record = prepared.record
    if record is None and prepared.outcome == "invalid":
        # The Replayer keeps no record of an invalid one: rebuild it to show what failed.
        record = replay_record(
            dead_letter_id=letter.id,
            topic=order.target_topic or letter.source_topic,
            key=letter.key,
            value=orjson.dumps(edit.apply(letter.payload)) if edit and applies else letter.value,
            headers=order.header_edit.apply(letter.headers)
            if order.header_edit
            else letter.headers,
            replay_count=letter.replay_count,
            request_id=order.request_id,
        )
    return Preview(
        dead_letter_id=letter.id,
        outcome=prepared.outcome,
        verdict=_verdict(prepared, record),
        topic=record.topic if record else None,
        key=shown(letter.key),
        headers=[(name, shown(value)) for name, value in record.headers] if record else [],
        payload=after if record else None,
        diff=line_diff(before, after) if edit is not None else [],
        edited=edit is not None,
        header_changes=order.header_edit.changes if order.header_edit else (),
    )


def _verdict(prepared: Prepared, record: OutgoingRecord | None) -> str:
    if prepared.outcome == "sent":
        if record is not None and claims_cloudevent(record.headers):
            return "Valid: the record passes its event type's schema."
        return "Valid: not a CloudEvent, so there is no schema to check it against."
    words = {"invalid": "Invalid", "noop": "Nothing to send", "refused": "Refused"}
    return f"{words.get(prepared.outcome, prepared.outcome)}: {prepared.detail}"


@dataclass(frozen=True, slots=True)
class DryRunView:
    """A dry run: how many of each outcome, and the first records."""

    total: int
    counts: dict[str, int]
    previews: list[Preview]


@dataclass(frozen=True, slots=True)
class Bar:
    """One hour of the histogram."""

    x: int
    y: int
    height: int
    count: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Histogram:
    """Dead letters per hour, laid out for an inline SVG (colours come from CSS)."""

    bars: tuple[Bar, ...]
    labels: tuple[tuple[int, str], ...]
    width: int
    height: int
    baseline: int
    bar_width: int
    total: int
    peak: int


BAR_WIDTH, BAR_GAP, PLOT_HEIGHT, MARGIN, LABEL_HEIGHT = 14, 3, 60, 2, 14


def histogram(counts: Sequence[int], start: datetime, end: datetime) -> Histogram:
    """Bars scaled to the busiest hour (a non-empty hour is at least 2 px high), with
    a time label under every sixth bar, starting where the bar starts."""
    peak = max(counts, default=0)
    step = (end - start) / max(len(counts), 1)
    bars = []
    for i, count in enumerate(counts):
        height = max(2, round(PLOT_HEIGHT * count / peak)) if count else 0
        bars.append(
            Bar(
                x=MARGIN + i * (BAR_WIDTH + BAR_GAP),
                y=MARGIN + PLOT_HEIGHT - height,
                height=height,
                count=count,
                start=start + step * i,
                end=start + step * (i + 1),
            )
        )
    labels = tuple((bar.x, bar.start.strftime("%H:%M")) for bar in bars[::6])
    return Histogram(
        bars=tuple(bars),
        labels=labels,
        width=MARGIN * 2 + len(counts) * (BAR_WIDTH + BAR_GAP) - BAR_GAP,
        height=MARGIN * 2 + PLOT_HEIGHT + LABEL_HEIGHT,
        baseline=MARGIN + PLOT_HEIGHT,
        bar_width=BAR_WIDTH,
        total=sum(counts),
        peak=peak,
    )


@dataclass(frozen=True, slots=True)
class Facet:
    """One facet's values with counts, each a link that filters by it."""

    title: str
    param: str
    current: str
    values: list[tuple[str, int, str]]  # value, count, URL
    clear_url: str


def facet_views(query: DlqQuery, found: Mapping[str, list[tuple[str, int]]]) -> list[Facet]:
    """The facets as the list shows them."""
    views = []
    for name, param, title in FACETS:
        current = getattr(query, param)
        values = [(v, n, query.url(page=1, **{param: v})) for v, n in found.get(name, [])]
        clear = "any" if param == "status" else ""
        views.append(Facet(title, param, current, values, query.url(page=1, **{param: clear})))
    return views


# --- the pages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """What a form on the list did, shown above the list."""

    title: str
    error: str | None = None
    dry_run: DryRunView | None = None
    replay: RequestState | None = None
