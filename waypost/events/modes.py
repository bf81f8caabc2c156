"""A Kafka record read as a CloudEvent, in either content mode of the Kafka binding.

- **Binary mode** (what Waypost writes): the attributes in ``ce_*`` headers, the data's
  media type in ``content-type``, the data (JSON) as the value.
- **Structured mode**: ``content-type: application/cloudevents+json`` and the whole
  event (attributes and ``data``, or ``data_base64``) as one JSON object in the value.
  Also read: a record without ``ce_*`` headers whose value is such an object with a
  ``specversion`` member, as the ``cloudevents`` SDK's 1.x Kafka helper
  (``cloudevents.v1.kafka.to_structured``) writes it, with ``datacontenttype`` moved to
  the ``content-type`` header.

Both become one :class:`Envelope` keyed by the spec's attribute names (``id``,
``type``, ``datacontenttype``, ...); the codec checks and types it. What cannot be read
raises :class:`UndecodableEvent`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from waypost.bus.records import Headers
from waypost.errors import UndecodableEvent

Mode = Literal["binary", "structured"]
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
ACCEPTED_MODES = (
    "Waypost accepts CloudEvents 1.0 in Kafka binary mode (headers ce_specversion, ce_id, "
    "ce_source, ce_type; the data as JSON in the value) or structured mode (content-type: "
    "application/cloudevents+json; the whole event as a JSON object in the value)"
)
REQUIRED = ("id", "source", "specversion", "type")
# Attributes the codec reads; any others (a foreign client's extensions) are left alone.
_READ = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "dataschema", "traceparent"}
    | {"tracestate", "datacontenttype"}
)
# Binary mode's header of each attribute (W3C trace context keeps its own names).
_HEADER = {name: f"ce_{name}" for name in _READ} | {
    "datacontenttype": "content-type",
    "traceparent": "traceparent",
    "tracestate": "tracestate",
}
_ATTRIBUTE = {header: name for name, header in _HEADER.items()}
_NO_DATA = object()


@dataclass(frozen=True, slots=True)
class Envelope:
    """A record's CloudEvents attributes (by their spec names) and where its data is."""

    mode: Mode
    attributes: dict[str, str]
    # Binary mode: the value, the data's JSON. Structured mode: the whole value.
    raw: bytes | None
    data: Any = _NO_DATA  # structured mode: the data, already parsed

    def name(self, attribute: str) -> str:
        """How this mode spells an attribute (``ce_type`` in binary mode, ``type`` in
        structured mode), for messages."""
        return _HEADER.get(attribute, attribute) if self.mode == "binary" else attribute

    def json_data(self, event_type: str) -> Any:
        """The event's data as a JSON value (UndecodableEvent: none, or not JSON)."""
        if self.mode == "structured":
            if self.data is _NO_DATA:
                raise UndecodableEvent(
                    "the structured-mode event has no data (nor data_base64) member",
                    event_type=event_type,
                )
            return self.data
        if self.raw is None:
            raise UndecodableEvent("the record has no body", event_type=event_type)
        try:
            return orjson.loads(self.raw)
        except orjson.JSONDecodeError as exc:
            raise UndecodableEvent(f"body is not JSON: {exc}", event_type=event_type) from None


def read(value: bytes | None, headers: Headers) -> Envelope:
    """The record as a CloudEvent in the mode it was written in."""
    found = _read_headers(headers)
    content_type = found.get("datacontenttype", "")
    if content_type.lower().startswith("application/cloudevents"):
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != STRUCTURED_CONTENT_TYPE:
            raise UndecodableEvent(
                f"unsupported content-type {content_type!r}: of the structured-mode "
                f"formats only {STRUCTURED_CONTENT_TYPE} is read (no batches, no Avro)"
            )
        return _structured(value, found)
    missing = [_HEADER[name] for name in REQUIRED if name not in found]
    if missing and not any(n.startswith("ce_") for n, _ in headers) and _has_specversion(value):
        return _structured(value, found, sdk_kafka=True)
    if missing:
        raise UndecodableEvent(
            f"not a CloudEvent in binary mode: missing header(s) {', '.join(missing)}"
        )
    return Envelope("binary", found, value)


def claims_cloudevent(headers: Headers) -> bool:
    """Whether a record says it is a CloudEvent (a ``ce_*`` header, or a structured-mode
    content-type): a replay checks such a record before sending it."""
    for name, raw in headers:
        if name.startswith("ce_"):
            return True
        if name == "content-type" and raw.lower().startswith(b"application/cloudevents"):
            return True
    return False


def _read_headers(headers: Headers) -> dict[str, str]:
    found: dict[str, str] = {}
    for header, raw in headers:
        name = _ATTRIBUTE.get(header)
        if name is None or name in found or raw is None:
            continue
        try:
            found[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UndecodableEvent(f"header {header!r} is not UTF-8") from None
    return found


def _has_specversion(value: bytes | None) -> bool:
    """A JSON object with a ``specversion`` member (cheap test first: this runs only
    for records that are not binary-mode events)."""
    if not value or b'"specversion"' not in value:
        return False
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and "specversion" in parsed


def _structured(value: bytes | None, found: dict[str, str], *, sdk_kafka: bool = False) -> Envelope:
    """Read the event object in the value. Trace context may be in Kafka headers too (the
    event's own members win); ``sdk_kafka``: the content-type header is the data's."""
    if not value:
        raise UndecodableEvent("the structured-mode record has no value")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UndecodableEvent(f"the structured-mode value is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise UndecodableEvent("the structured-mode value is not a JSON object")
    attributes: dict[str, str] = {
        name: found[name] for name in ("traceparent", "tracestate") if name in found
    }
    if sdk_kafka and "datacontenttype" in found:
        attributes["datacontenttype"] = found["datacontenttype"]
    for name in _READ:
        member = event.get(name)
        if member is None:
            continue
        if not isinstance(member, str):
            raise UndecodableEvent(f"the structured-mode attribute {name!r} is not a string")
        attributes[name] = member
    missing = [name for name in REQUIRED if name not in attributes]
    if missing:
        raise UndecodableEvent(
            f"not a CloudEvent in structured mode: missing attribute(s) {', '.join(missing)}"
        )
    return Envelope("structured", attributes, value, _data(event))


def _data(event: dict[str, Any]) -> Any:
    if "data" in event:
        return event["data"]
    if "data_base64" not in event:
        return _NO_DATA
    encoded = event["data_base64"]
    try:
        raw = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
    except binascii.Error:
        raw = None
    if raw is None:
        raise UndecodableEvent("the structured-mode data_base64 is not base64")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UndecodableEvent(f"the structured-mode data_base64 is not JSON: {exc}") from None
