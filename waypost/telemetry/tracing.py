"""One OpenTelemetry trace per workflow, carried across Kafka in W3C ``traceparent``.

Span names and attributes follow the messaging semantic conventions: a consumer's work
on a record is ``process <topic>`` (kind CONSUMER) whose parent is the context in the
record's headers; the events it produces carry that span's context.

Two spans have ids derived from what they stand for, so the context an event carries
can be rebuilt from workflow state alone: a task's dispatch (``create <topic>``, from
its dispatch id: its dead letter must be the dispatch byte for byte) and an escalation
(``escalate <step>``, from the escalation id: the reviewer's decision, made later in
another process, hangs its ``review`` wait span under it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    format_span_id,
    format_trace_id,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
# The span id the next span started in this context takes (see DerivedIds).
_NEXT_SPAN_ID: ContextVar[int | None] = ContextVar("waypost_next_span_id", default=None)
# Set by Tracing.quiet: derived spans are not recorded (their records may not be sent).
_QUIET: ContextVar[bool] = ContextVar("waypost_quiet_spans", default=False)

Attributes = Mapping[str, Any]


class DerivedIds(RandomIdGenerator):
    """Random ids, except for a span started through :meth:`Tracing.derived_span`."""

    def generate_span_id(self) -> int:
        """The derived id waiting in this context, or a random one."""
        chosen = _NEXT_SPAN_ID.get()
        if chosen is not None:
            _NEXT_SPAN_ID.set(None)
            return chosen
        return super().generate_span_id()


def derived_span_id(key: str) -> int:
    """A span id (64 bits, never 0) that depends only on ``key``."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") or 1


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a W3C traceparent, None if it has none."""
    context = _span_context(traceparent, None)
    return format_trace_id(context.trace_id) if context is not None else None


def trace_url(template: str | None, traceparent: str | None) -> str | None:
    """Where a trace viewer shows the trace of ``traceparent`` (``{trace_id}`` in the
    template), None without a template or a trace."""
    trace_id = trace_id_of(traceparent)
    if template is None or trace_id is None:
        return None
    return template.replace("{trace_id}", trace_id)


def derived_traceparent(root: str | None, key: str) -> str | None:
    """``root``'s trace with the span derived from ``key`` as parent (None without root)."""
    context = _span_context(root, None)
    if context is None:
        return None
    flags = f"{int(context.trace_flags):02x}"
    return f"00-{format_trace_id(context.trace_id)}-{format_span_id(derived_span_id(key))}-{flags}"


def _span_context(traceparent: str | None, tracestate: str | None) -> SpanContext | None:
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return context if context.is_valid else None


def _parent(traceparent: str | None, tracestate: str | None) -> otel_context.Context:
    """A context whose current span is the remote parent named by the headers (an empty
    context, which starts a new trace, when there is none)."""
    span_context = _span_context(traceparent, tracestate)
    if span_context is None:
        return otel_context.Context()
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def headers_of(span: Span) -> tuple[str | None, str | None]:
    """The (traceparent, tracestate) that make ``span`` the parent of what comes next."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent"), carrier.get("tracestate")


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


class Tracing:
    """Starts Waypost's spans on a tracer provider (none: tracing is off and cheap)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.enabled = provider is not None
        source = provider if provider is not None else trace.NoOpTracerProvider()
        self._tracer = source.get_tracer("waypost")

    @contextmanager
    def processing(
        self,
        topic: str,
        *,
        traceparent: str | None,
        tracestate: str | None = None,
        attributes: Attributes | None = None,
    ) -> Iterator[Span]:
        """``process <topic>``: the current span while a consumer handles one record."""
        if not self.enabled:
            yield trace.INVALID_SPAN
            return
        with self._tracer.start_as_current_span(
            f"process {topic}",
            context=_parent(traceparent, tracestate),
            kind=SpanKind.CONSUMER,
            attributes=_messaging(topic, "process", attributes),
        ) as span:
            yield span

    def start_processing(
        self,
        topic: str,
        *,
        traceparent: str | None,
        tracestate: str | None = None,
        attributes: Attributes | None = None,
    ) -> Span:
        """Like :meth:`processing` for a record of a batch: the caller makes the span
        current with :meth:`within` while it works on that record, and ends it."""
        if not self.enabled:
            return trace.INVALID_SPAN
        return self._tracer.start_span(
            f"process {topic}",
            context=_parent(traceparent, tracestate),
            kind=SpanKind.CONSUMER,
            attributes=_messaging(topic, "process", attributes),
        )

    @contextmanager
    def within(self, span: Span | None) -> Iterator[None]:
        """Make ``span`` current for the block (no-op for None)."""
        if span is None or not self.enabled:
            yield
            return
        with trace.use_span(span, end_on_exit=False):
            yield

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Record no derived span in the block (their ids are the same when recorded
        later, so the records built meanwhile name them all the same)."""
        token = _QUIET.set(True)
        try:
            yield
        finally:
            _QUIET.reset(token)

    @contextmanager
    def span(
        self,
        name: str,
        *,
        attributes: Attributes | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Iterator[Span]:
        """A child of the current span (a root span when there is none)."""
        if not self.enabled:
            yield trace.INVALID_SPAN
            return
        with self._tracer.start_as_current_span(
            name, kind=kind, attributes=_clean(attributes)
        ) as span:
            yield span

    def outgoing(self, fallback: tuple[str | None, str | None]) -> tuple[str | None, str | None]:
        """The context an event produced now carries: the current span's, or
        ``fallback`` (the workflow's) when no span is recording."""
        span = trace.get_current_span()
        if self.enabled and span.get_span_context().is_valid:
            return headers_of(span)
        return fallback

    def derived_span(
        self,
        name: str,
        *,
        key: str,
        root: str | None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record an instant span (at ``at``, default now) whose id is derived from
        ``key``, in ``root``'s trace.

        Its parent is the current span when that is in the same trace, else ``root``.
        """
        if not self.enabled or _QUIET.get():
            return
        root_context = _span_context(root, None)
        if root_context is None:
            return
        current = trace.get_current_span().get_span_context()
        parent = (
            None
            if current.is_valid and current.trace_id == root_context.trace_id
            else trace.set_span_in_context(NonRecordingSpan(root_context))
        )
        token = _NEXT_SPAN_ID.set(derived_span_id(key))
        try:
            span = self._tracer.start_span(
                name,
                context=parent,
                kind=kind,
                attributes=_clean(attributes),
                start_time=_nanos(at) if at is not None else None,
            )
        finally:
            _NEXT_SPAN_ID.reset(token)
        span.end(end_time=_nanos(at) if at is not None else None)

    def finished_span(
        self,
        name: str,
        *,
        parent: str | None,
        start: datetime,
        end: datetime,
        attributes: Attributes | None = None,
    ) -> tuple[str | None, str | None]:
        """Record a span that covered ``start``..``end`` under ``parent``; returns the
        headers that make it the parent of what comes next (``(parent, None)`` when
        tracing is off)."""
        if not self.enabled:
            return parent, None
        # Linked to the span it is recorded in (a reviewer's HTTP request, its own trace).
        current = trace.get_current_span().get_span_context()
        span = self._tracer.start_span(
            name,
            context=_parent(parent, None),
            attributes=_clean(attributes),
            links=[Link(current)] if current.is_valid else None,
            start_time=_nanos(start),
        )
        span.end(end_time=max(_nanos(end), _nanos(start)))
        return headers_of(span)

    def context_of(
        self, span: Span, fallback: tuple[str | None, str | None]
    ) -> tuple[str | None, str | None]:
        """The headers that make ``span`` a parent, or ``fallback`` if it is not recording."""
        if self.enabled and span.get_span_context().is_valid:
            return headers_of(span)
        return fallback

    def current_ids(self) -> tuple[str, str] | None:
        """(trace id, span id) of the current span, for logs; None without one."""
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return format_trace_id(context.trace_id), format_span_id(context.span_id)


def _clean(attributes: Attributes | None) -> dict[str, Any] | None:
    """Attributes without the unset ones (OpenTelemetry refuses None)."""
    if attributes is None:
        return None
    return {key: value for key, value in attributes.items() if value is not None}


def _messaging(topic: str, operation: str, extra: Attributes | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    if extra:
        attributes.update({k: v for k, v in extra.items() if v is not None})
    return attributes


NO_TRACING = Tracing(None)
