"""Reading CloudEvents in either Kafka content mode: structured mode as the official
``cloudevents`` SDK writes it decodes into the same Event as Waypost's binary mode, and
what cannot be read says which modes are accepted."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import kafka as ce_kafka_v1
from cloudevents.v1.http import CloudEvent as CloudEventV1

from waypost.bus.records import Headers
from waypost.errors import InvalidEvent, UndecodableEvent
from waypost.events import Codec, Event, GoalSubmitted, new_traceparent
from waypost.events.modes import ACCEPTED_MODES, claims_cloudevent

CODEC = Codec()
TIME = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
GOAL = {"type": "support.ticket", "input": {"subject": "Refund", "customer": "Dana"}}
STRUCTURED = (("content-type", b"application/cloudevents+json"),)


def _attributes(**changes: Any) -> dict[str, Any]:
    return {
        "id": "goal-1",
        "source": "https://crm.example/tickets",
        "type": "waypost.goal.submitted",
        "time": TIME,
        "subject": "ticket 42",
        **changes,
    }


def _headers(message: Any) -> Headers:
    return tuple((name, value) for name, value in message.headers.items())


def _event_object(**changes: Any) -> dict[str, Any]:
    attributes = _attributes(**{"time": "2024-05-06T07:08:09.123Z", **changes})
    return {"specversion": "1.0", **attributes, "data": GOAL}


def _refused(value: bytes | None, headers: Headers = STRUCTURED) -> str:
    with pytest.raises(UndecodableEvent) as caught:
        CODEC.decode(value, headers)
    message = str(caught.value)
    assert message.endswith(ACCEPTED_MODES), message
    return message


def test_a_structured_event_from_the_sdk_decodes_like_its_binary_twin() -> None:
    traceparent = new_traceparent()
    message = ce_kafka.to_structured_event(
        CloudEvent(_attributes(traceparent=traceparent, datacontenttype="application/json"), GOAL)
    )
    assert message.headers == {"content-type": b"application/cloudevents+json"}

    decoded = CODEC.decode(message.value, _headers(message))

    binary = CODEC.encode(
        Event(
            GoalSubmitted.model_validate(GOAL),
            source="https://crm.example/tickets",
            id="goal-1",
            time=TIME,
            subject="ticket 42",
            traceparent=traceparent,
        )
    )
    assert decoded == CODEC.decode(binary.value, binary.headers)
    assert decoded.payload == GoalSubmitted.model_validate(GOAL)
    assert (decoded.id, decoded.time, decoded.traceparent) == ("goal-1", TIME, traceparent)


def test_the_sdks_1x_kafka_helper_is_read_too() -> None:
    # cloudevents.v1.kafka.to_structured moves datacontenttype into the content-type
    # header and writes no ce_ header: the value's specversion marks the event.
    event = CloudEventV1(
        {
            "type": "waypost.goal.submitted",
            "source": "legacy",
            "id": "goal-2",
            "datacontenttype": "application/json",
        },
        GOAL,
    )
    message = ce_kafka_v1.to_structured(event)
    assert message.headers == {"content-type": b"application/json"}

    value = message.value.encode() if isinstance(message.value, str) else message.value
    decoded = CODEC.decode(value, _headers(message))

    assert (decoded.id, decoded.source) == ("goal-2", "legacy")
    assert decoded.payload == GoalSubmitted.model_validate(GOAL)


def test_data_base64_and_a_charset_parameter_are_read() -> None:
    document = _event_object()
    del document["data"]
    document["data_base64"] = base64.b64encode(orjson.dumps(GOAL)).decode()
    headers = (("content-type", b"application/cloudevents+json; charset=UTF-8"),)

    decoded = CODEC.decode(orjson.dumps(document), headers)

    assert decoded.payload == GoalSubmitted.model_validate(GOAL)


def test_trace_context_may_ride_in_kafka_headers_and_the_events_own_wins() -> None:
    outer, inner = new_traceparent(), new_traceparent()
    headers = (*STRUCTURED, ("traceparent", outer.encode()))

    from_header = CODEC.decode(orjson.dumps(_event_object()), headers)
    own = CODEC.decode(orjson.dumps(_event_object(traceparent=inner)), headers)

    assert (from_header.traceparent, own.traceparent) == (outer, inner)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "the structured-mode value is not JSON"),
        (b"[1, 2]", "the structured-mode value is not a JSON object"),
        (None, "the structured-mode record has no value"),
        (orjson.dumps({"specversion": "1.0", "data": GOAL}), "missing attribute(s) id, source"),
        (orjson.dumps(_event_object(id=7)), "attribute 'id' is not a string"),
        (orjson.dumps(_event_object(specversion="0.3")), "unsupported specversion '0.3'"),
        (orjson.dumps(_event_object(type="com.example.x")), "unknown type 'com.example.x'"),
        (orjson.dumps(_event_object(time="yesterday")), "time 'yesterday' is not an RFC 3339"),
        (
            orjson.dumps(_event_object(datacontenttype="text/plain")),
            "unsupported datacontenttype 'text/plain'",
        ),
        (
            orjson.dumps({k: v for k, v in _event_object().items() if k != "data"}),
            "has no data (nor data_base64) member",
        ),
    ],
)
def test_a_malformed_structured_event_is_undecodable_and_says_what_and_which_modes(
    value: bytes | None, problem: str
) -> None:
    message = _refused(value)

    assert problem in message


def test_bad_data_base64_is_undecodable() -> None:
    document = _event_object()
    del document["data"]
    document["data_base64"] = "***"

    assert "data_base64 is not base64" in _refused(orjson.dumps(document))


@pytest.mark.parametrize(
    "content_type", [b"application/cloudevents-batch+json", b"application/cloudevents+avro"]
)
def test_other_structured_formats_are_refused_by_name(content_type: bytes) -> None:
    message = _refused(orjson.dumps(_event_object()), (("content-type", content_type),))

    assert f"unsupported content-type {content_type.decode()!r}" in message


def test_data_breaking_its_schema_is_invalid_and_names_the_field() -> None:
    document = {**_event_object(), "data": {"type": "Not A Type", "input": {}}}

    with pytest.raises(InvalidEvent, match="at type:") as caught:
        CODEC.decode(orjson.dumps(document), STRUCTURED)

    assert caught.value.event_type == "goal.submitted"


def test_a_binary_record_missing_headers_names_them_and_the_modes() -> None:
    message = _refused(orjson.dumps(GOAL), (("content-type", b"application/json"),))

    assert "not a CloudEvent in binary mode: missing header(s) ce_id" in message


def test_a_record_saying_it_is_a_cloudevent_is_told_from_one_that_does_not() -> None:
    assert claims_cloudevent((("ce_type", b"x"),))
    assert claims_cloudevent(STRUCTURED)
    assert not claims_cloudevent((("content-type", b"application/json"), ("x-id", b"1")))
