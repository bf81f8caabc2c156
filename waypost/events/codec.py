"""CloudEvents 1.0 over Kafka: written in binary mode (``ce_*`` headers, JSON body),
read in binary or structured mode (``modes``), schema-checked.

The same codec runs on both ends: ``encode`` refuses a body that breaks its schema (a bug
in the producer), ``decode`` raises :class:`UndecodableEvent` (its message ends with the
modes Waypost accepts) or :class:`InvalidEvent` so the consumer can dead-letter the
record and keep going.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jsonschema_rs
import orjson
import pydantic

import schemas
from waypost.bus.records import Headers
from waypost.errors import InvalidEvent, UndecodableEvent
from waypost.events import modes
from waypost.events.envelope import TYPE_PREFIX, Event, utcnow
from waypost.events.payloads import PAYLOAD_TYPES, Payload
from waypost.events.storable import json_problem

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event as bytes: what goes into a Kafka record."""

    key: bytes
    value: bytes
    headers: Headers


class Codec:
    """Encodes and decodes Waypost events, validating bodies against ``schemas/``."""

    def __init__(self) -> None:
        registry = jsonschema_rs.Registry(list(schemas.shared_documents().items()))
        self._validators: dict[str, Any] = {}
        self._schema_uri: dict[str, str] = {}
        self._type_of_uri: dict[str, str] = {}
        for schema in schemas.all_schemas():
            validator = jsonschema_rs.validator_for(
                schema.document, registry=registry, validate_formats=True
            )
            self._validators[schema.uri] = validator
            self._type_of_uri[schema.uri] = schema.event_type
            # Later versions overwrite earlier ones: producers write the latest.
            self._validators[schema.event_type] = validator
            self._schema_uri[schema.event_type] = schema.uri

    def encode(self, event: Event) -> EncodedEvent:
        """Serialize an event; InvalidEvent if its body breaks the schema."""
        body = event.payload.model_dump(mode="json", exclude_none=True)
        self._check(event.type, body, self._validators[event.type])
        try:
            serialized = orjson.dumps(body)
        except TypeError as exc:
            raise InvalidEvent(f"{event.ce_type} body cannot be serialized: {exc}") from None
        problem = json_problem(serialized)
        if problem is not None:
            raise InvalidEvent(f"{event.ce_type} body cannot be stored: {problem}")
        headers: list[tuple[str, bytes]] = [
            ("ce_specversion", b"1.0"),
            ("ce_id", event.id.encode()),
            ("ce_source", event.source.encode()),
            ("ce_type", event.ce_type.encode()),
            ("ce_time", _format_time(event.time).encode()),
            ("ce_dataschema", self._schema_uri[event.type].encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        if event.subject is not None:
            headers.append(("ce_subject", event.subject.encode()))
        for name, value in (
            ("traceparent", event.traceparent),
            ("tracestate", event.tracestate),
            ("waypost-workflow-id", event.workflow_id),
            ("waypost-task-id", event.task_id),
            ("waypost-attempt", str(event.attempt) if event.attempt is not None else None),
        ):
            if value is not None:
                headers.append((name, value.encode()))
        return EncodedEvent(event.key.encode(), serialized, tuple(headers))

    def decode(self, value: bytes | None, headers: Headers) -> Event:
        """Parse and validate a record (binary or structured mode) into a typed Event."""
        try:
            return self._decode(modes.read(value, headers))
        except UndecodableEvent as exc:
            # Whatever the fault, the dead letter says what a sender should write.
            raise UndecodableEvent(
                f"{exc}. {modes.ACCEPTED_MODES}", event_type=exc.event_type
            ) from None

    def _decode(self, envelope: modes.Envelope) -> Event:
        attrs = envelope.attributes
        if attrs["specversion"] != SPEC_VERSION:
            raise UndecodableEvent(
                f"unsupported {envelope.name('specversion')} {attrs['specversion']!r}; "
                "expected '1.0'"
            )
        content_type = attrs.get("datacontenttype", CONTENT_TYPE)
        if not content_type.startswith(CONTENT_TYPE):
            raise UndecodableEvent(
                f"unsupported {envelope.name('datacontenttype')} {content_type!r}; "
                "send the data as application/json"
            )
        ce_type = attrs["type"]
        event_type = ce_type.removeprefix(TYPE_PREFIX)
        payload_type = PAYLOAD_TYPES.get(event_type)
        if not ce_type.startswith(TYPE_PREFIX) or payload_type is None:
            raise UndecodableEvent(
                f"unknown {envelope.name('type')} {ce_type!r}; known: "
                + ", ".join(sorted(TYPE_PREFIX + t for t in PAYLOAD_TYPES))
            )
        body = envelope.json_data(event_type)
        problem = json_problem(envelope.raw or b"")
        if problem is not None:
            raise InvalidEvent(f"{ce_type} body cannot be stored: {problem}", event_type=event_type)
        schema_uri = attrs.get("dataschema")
        if schema_uri is not None and self._type_of_uri.get(schema_uri, event_type) != event_type:
            raise InvalidEvent(
                f"{envelope.name('dataschema')} {schema_uri} is not a schema of {ce_type}",
                event_type=event_type,
            )
        # A known version of this type's schema if named, else the newest one.
        validator = self._validators.get(schema_uri or event_type) or self._validators[event_type]
        self._check(event_type, body, validator)
        try:
            payload: Payload = payload_type.model_validate(body)
        except pydantic.ValidationError as exc:
            raise InvalidEvent(str(exc), event_type=event_type) from None
        return Event(
            payload=payload,
            id=attrs["id"],
            source=attrs["source"],
            time=_parse_time(attrs.get("time"), envelope.name("time")),
            subject=attrs.get("subject"),
            traceparent=attrs.get("traceparent"),
            tracestate=attrs.get("tracestate"),
        )

    @staticmethod
    def _check(event_type: str, body: Any, validator: Any) -> None:
        try:
            validator.validate(body)
        except jsonschema_rs.ValidationError as exc:
            path = "/".join(str(p) for p in exc.instance_path) or "(body)"
            raise InvalidEvent(
                f"{TYPE_PREFIX}{event_type} body breaks its schema at {path}: {exc.message}",
                event_type=event_type,
            ) from None


@cache
def default_codec() -> Codec:
    """The process-wide codec (built lazily; schemas are immutable)."""
    return Codec()


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(text: str | None, name: str) -> datetime:
    if text is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in text.upper():
        raise UndecodableEvent(
            f"{name} {text!r} is not an RFC 3339 timestamp with a UTC offset"
        ) from None
    return moment
