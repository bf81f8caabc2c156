"""Tracing helpers, with the SDK's in-memory exporter (no collector)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from waypost.events import new_traceparent
from waypost.telemetry import NO_TRACING, Tracing
from waypost.telemetry.tracing import (
    DerivedIds,
    derived_span_id,
    derived_traceparent,
    trace_id_of,
    trace_url,
)

ROOT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=DerivedIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider), exporter
    provider.shutdown()


def test_a_derived_traceparent_keeps_the_trace_and_names_the_derived_span() -> None:
    derived = derived_traceparent(ROOT, "dispatch-1")
    assert derived == derived_traceparent(ROOT, "dispatch-1")  # rebuilt: the same bytes
    assert derived != derived_traceparent(ROOT, "dispatch-2")
    assert trace_id_of(derived) == "0af7651916cd43dd8448eb211c80319c"
    assert derived is not None
    assert derived.split("-")[2] == f"{derived_span_id('dispatch-1'):016x}"
    assert derived_traceparent(None, "dispatch-1") is None
    assert derived_traceparent("garbage", "dispatch-1") is None


def test_trace_urls_fill_in_the_trace_id() -> None:
    assert trace_url("http://j/trace/{trace_id}", ROOT) == (
        "http://j/trace/0af7651916cd43dd8448eb211c80319c"
    )
    assert trace_url(None, ROOT) is None
    assert trace_url("http://j/{trace_id}", None) is None


def test_processing_continues_the_record_s_trace_and_events_carry_its_span(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    with tracing.processing("ns.results", traceparent=ROOT, attributes={"x": None, "y": 1}):
        traceparent, _ = tracing.outgoing(("fallback", None))
    (span,) = exporter.get_finished_spans()
    assert span.name == "process ns.results"
    assert span.kind is SpanKind.CONSUMER
    assert format_trace_id(span.context.trace_id) == trace_id_of(ROOT)
    assert span.parent is not None
    assert format_span_id(span.parent.span_id) == "b7ad6b7169203331"
    assert span.attributes is not None
    assert span.attributes["messaging.destination.name"] == "ns.results"
    assert "x" not in span.attributes  # unset attributes are left out
    assert traceparent == f"00-{trace_id_of(ROOT)}-{format_span_id(span.context.span_id)}-01"
    # Outside any span an event carries the workflow's own context.
    assert tracing.outgoing(("fallback", "s")) == ("fallback", "s")


def test_a_derived_span_has_the_id_its_event_names(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    at = datetime(2026, 1, 1, tzinfo=UTC)
    tracing.derived_span("create ns.tasks.x", key="dispatch-1", root=ROOT, at=at)
    with tracing.quiet():
        tracing.derived_span("create ns.tasks.x", key="dispatch-2", root=ROOT)
    (span,) = exporter.get_finished_spans()
    assert span.context.span_id == derived_span_id("dispatch-1")
    assert span.start_time == span.end_time == int(at.timestamp() * 1e9)
    # Its parent is the workflow's root when no span of that trace is current.
    assert span.parent is not None
    assert format_span_id(span.parent.span_id) == "b7ad6b7169203331"
    # Random ids elsewhere.
    with tracing.span("other") as other:
        assert other.get_span_context().span_id != derived_span_id("dispatch-1")


def test_a_finished_span_covers_the_wait_and_links_the_current_span(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    opened = datetime(2026, 1, 1, tzinfo=UTC)
    with tracing.span("POST /decision") as request:
        traceparent, _ = tracing.finished_span(
            "review triage", parent=ROOT, start=opened, end=opened + timedelta(minutes=5)
        )
    review = next(s for s in exporter.get_finished_spans() if s.name == "review triage")
    assert (review.end_time - review.start_time) / 1e9 == pytest.approx(300)
    assert [link.context.span_id for link in review.links] == [request.get_span_context().span_id]
    assert traceparent is not None
    assert trace_id_of(traceparent) == trace_id_of(ROOT)


def test_tracing_off_makes_no_spans_and_keeps_the_given_context() -> None:
    root = new_traceparent()
    with NO_TRACING.processing("t", traceparent=root) as span:
        assert not span.get_span_context().is_valid
        assert NO_TRACING.outgoing((root, None)) == (root, None)
    assert NO_TRACING.finished_span(
        "x", parent=root, start=datetime.now(UTC), end=datetime.now(UTC)
    ) == (root, None)
