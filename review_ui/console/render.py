"""Rendering console pages: one Jinja2 environment (autoescape always on), whole pages
for browsers, one named block for htmx requests (the block whose name is the id of the
element htmx swaps), and the filters the templates share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

PACKAGE_DIR = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
# What every page loads: htmx, the console's script, and its style sheets (one per page
# family besides the base one).
STATIC_FILES = (
    "htmx.min.js",
    "console.js",
    "console.css",
    "console-workflows.css",
    "console-agents.css",
    "console-governance.css",
    "console-quality.css",
)
MAIN_BLOCK = "main"


def is_htmx(request: Request) -> bool:
    """True for an htmx request that wants a fragment (a history restore wants the page)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre> (or a textarea), non-ASCII kept readable."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def duration(delta: timedelta) -> str:
    """A compact duration: ``1d 3h``, ``2h 10m``, ``5m``, ``<1m``."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else "<1m"


def time_left(due: datetime, now: datetime) -> str:
    """``2h 10m left`` before the deadline, ``overdue by 5m`` after it."""
    if due <= now:
        return f"overdue by {duration(now - due)}"
    return f"{duration(due - now)} left"


def timestamp(value: datetime | str | None) -> str:
    """A UTC time to the second, as reviewers read it (``2024-03-01 12:00:05 UTC``)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        return moment.isoformat(sep=" ", timespec="seconds")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | str | None) -> str:
    """A machine-readable time for ``<time datetime=...>``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else value.isoformat(timespec="seconds")


def options(values: Iterable[str], current: str = "", prefix: str = "") -> list[tuple[str, str]]:
    """(value, text) pairs for a <select>, keeping the current value even if it is gone."""
    listed = list(values)
    if current and current not in listed:
        listed.append(current)
    return [(value, f"{prefix}{value}") for value in listed]


def _static_url(name: str) -> str:
    """A /static URL with a content hash, so a new release is never served from cache."""
    path = STATIC_DIR / name
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.is_file() else "0"
    return f"/static/{name}?v={version}"


class Pages:
    """The console's templates and how a response is made from one of them."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        # Autoescape for every template whatever its name: nothing is ever rendered raw.
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            pretty_json=pretty_json,
            timestamp=timestamp,
            iso=iso,
            duration=duration,
            path_part=lambda value: quote(str(value), safe=""),
        )
        self.env.globals.update(
            static={n: _static_url(n) for n in STATIC_FILES},
            time_left=time_left,
            options=options,
        )
        # Macros are a global (not imported per template) so that a block rendered on its
        # own, without the rest of its template, can use them too.
        self.env.globals["ui"] = self.env.get_template("_macros.html").module

    def template(self, name: str) -> Template:
        """A template by file name."""
        return self.env.get_template(name)

    def render_page(self, name: str, context: Mapping[str, Any]) -> str:
        """The whole page."""
        return self.template(name).render(context)

    def render_block(
        self, name: str, block: str, context: Mapping[str, Any], *, oob: Iterable[str] = ()
    ) -> str:
        """One block of a page, plus other blocks marked for an out-of-band swap."""
        template = self.template(name)
        parts = [self._block(template, block, context)]
        if block == MAIN_BLOCK and "title" in template.blocks:
            # htmx takes the document title from a <title> at the top of a fragment.
            title = self._block(template, "title", context)
            parts.insert(0, f"<title>{title} · Waypost</title>")
        parts.extend(self._block(template, extra, {**context, "oob": True}) for extra in oob)
        return "".join(parts)

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        block: str | None = None,
        oob: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """A page for a browser; for htmx, the block named ``block`` or else the one
        htmx targets (``HX-Target``), falling back to the page's main block."""
        context = {"oob": False, "notice": None, **context}
        if is_htmx(request):
            template = self.template(name)
            target = block or request.headers.get("hx-target") or MAIN_BLOCK
            chosen = target if target in template.blocks else MAIN_BLOCK
            html = self.render_block(name, chosen, context, oob=oob)
        else:
            html = self.render_page(name, context)
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    @staticmethod
    def _block(template: Template, block: str, context: Mapping[str, Any]) -> str:
        return "".join(template.blocks[block](template.new_context(dict(context))))


@cache
def pages() -> Pages:
    """The console's templates, loaded on first use."""
    return Pages()
