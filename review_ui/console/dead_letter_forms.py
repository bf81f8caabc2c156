"""Forms and queries of the dead-letter workbench: what the analyst asked for, parsed
and checked (a refused one says why, next to the form)."""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Path
from pydantic import BaseModel, Field

from orchestrator.dead_letters.edits import Edit, HeaderEdit
from orchestrator.dead_letters.filters import build_filter
from orchestrator.errors import ReplayError
from orchestrator.store.dead_letters import DeadLetterFilter
from review_ui.console.common import NUL_MESSAGE, has_nul, url_number, url_text

MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints
DeadLetterId = Annotated[int, Path(ge=1, le=MAX_ID)]

STATUSES = ("pending", "replayed", "resolved", "discarded", "any")
FACETS = (  # the store's facet, the query parameter it sets, its heading
    ("status", "status", "Status"),
    ("source_topic", "topic", "Source topic"),
    ("error_class", "error", "Error class"),
    ("capability", "capability", "Capability"),
)
CLOSE = {"resolve": "resolved", "discard": "discarded"}
NOTICES = {"resolved": "Resolved.", "discarded": "Discarded."}
DEFAULT_PAGE_SIZE = 50
MAX_SELECTED = 500
HOURS = 24
_MAX_TEXT = 300
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class Refused(Exception):
    """A form the analyst must change: the message says how (shown next to the form)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- the list's filters as they travel in URLs ------------------------------------------


@dataclass(frozen=True, slots=True)
class DlqQuery:
    """What the analyst asked the list for; "" means any."""

    status: str = "pending"
    topic: str = ""
    error: str = ""
    capability: str = ""
    workflow: str = ""
    text: str = ""
    since: str = ""  # 30m, 2h, 7d or an ISO time
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> DlqQuery:
        """The query in URL parameters; a value that makes no sense means its default."""

        def text(name: str) -> str:
            return url_text(params, name, _MAX_TEXT)

        status = text("status")
        return cls(
            status=status if status in STATUSES else "pending",
            topic=text("topic"),
            error=text("error"),
            capability=text("capability"),
            workflow=text("workflow"),
            text=text("text"),
            since=text("since"),
            page=url_number(text("page"), 1, 1, 100_000),
            page_size=url_number(text("page_size"), DEFAULT_PAGE_SIZE, 1, 200),
        )

    def terms(self) -> dict[str, str]:
        """The filter's terms, named as filter expressions name them."""
        names = ("status", "topic", "error", "capability", "workflow", "text", "since")
        return {name: getattr(self, name) for name in names if getattr(self, name)}

    def filters(self, now: datetime) -> DeadLetterFilter:
        """The store's filter (FilterError: ``since`` is neither a duration nor a time)."""
        return build_filter(dict(self.terms()), now=now)

    def expression(self) -> str:
        """The filter as an expression (how a replay of "all that match" records it)."""
        return shlex.join(f"{name}={value}" for name, value in self.terms().items())

    def url(self, path: str = "/dlq", **changes: Any) -> str:
        """A link to ``path`` with this query after ``changes`` (defaults left out)."""
        changed, default = replace(self, **changes), DlqQuery()
        params = {
            f.name: str(getattr(changed, f.name))
            for f in fields(self)
            if getattr(changed, f.name) != getattr(default, f.name)
        }
        return f"{path}?{urlencode(params)}" if params else path


# --- what the forms send ------------------------------------------------------------------


class DlqForm(BaseModel):
    """The fields of the workbench's forms (each sends those it has); kept and shown
    again when a request is refused, so nothing typed is lost."""

    op: str = Field("", max_length=20)
    request_id: str = Field("", max_length=100)
    target: str = Field("", max_length=300)
    edit_kind: str = Field("merge_patch", max_length=20)
    edit: str = Field("", max_length=1_000_000)
    headers_edit: str = Field("", max_length=200_000)
    rate: str = Field("", max_length=50)
    force: bool = False
    scope: str = Field("selected", max_length=20)  # selected | filter (the list only)
    reason: str = Field("", max_length=4000)
    selected: list[str] = Field(default_factory=list, max_length=MAX_SELECTED)


FormDep = Annotated[DlqForm, Form()]


def fresh_form(**values: Any) -> DlqForm:
    """An empty form with a request id of its own."""
    return DlqForm(request_id=uuid.uuid4().hex, **values)


def parse_json(text: str) -> Any:
    """A JSON document the analyst typed (Refused: not JSON, or not storable)."""

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        document = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise Refused(
            f"The edit is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except ValueError as exc:
        raise Refused(f"The edit is not valid JSON: {exc}.") from None
    if has_nul(text) or "\\u0000" in json.dumps(document):
        raise Refused(NUL_MESSAGE)
    return document


def parse_edit(kind: str, text: str, *, unchanged: Any = None) -> Edit | None:
    """The edit a form asks for; None when there is none (a blank field, or a
    replacement equal to ``unchanged``, the payload as it is)."""
    if not text.strip():
        return None
    if kind not in ("replace", "merge_patch"):
        raise Refused("Choose how to apply the edit: replace the payload, or merge patch.")
    document = parse_json(text)
    if kind == "merge_patch":
        if not isinstance(document, dict):
            raise Refused('A merge patch is a JSON object ({"field": "new value", ...}).')
        return Edit("merge_patch", document) if document else None
    if unchanged is not None and _canonical(document) == _canonical(unchanged):
        return None
    return Edit("replace", document)


def parse_header_edit(text: str) -> HeaderEdit | None:
    """The header edit a form asks for: a JSON object of header name to new text value,
    or null to remove it; None when the field is blank or ``{}``."""
    if not text.strip():
        return None
    document = parse_json(text)
    if not isinstance(document, dict) or not all(
        value is None or isinstance(value, str) for value in document.values()
    ):
        raise Refused(
            'A header edit is a JSON object of text values: {"ce_type": "waypost.goal.submitted", '
            '"unwanted-header": null}.'
        )
    if not document:
        return None
    try:
        return HeaderEdit.parse(document)
    except ReplayError as exc:
        raise Refused(f"The header edit cannot be used: {exc}.") from None


def parse_rate(text: str, default: float) -> float | None:
    """Messages per second: blank for the default, ``unlimited`` for no limit."""
    text = text.strip().lower()
    if not text:
        return default
    if text == "unlimited":
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not 0 < rate <= 1_000_000:
        raise Refused("The rate is a number of messages per second above 0, or “unlimited”.")
    return rate


def _canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False)


# --- views: what the templates print (pure) -------------------------------------------------
