"""Building a process's tracer provider from its settings (called in ``main()``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from waypost.settings import CommonSettings
from waypost.telemetry.tracing import DerivedIds, Tracing


def tracing(settings: CommonSettings, service: str) -> Tracing:
    """Tracing for this process: spans exported over OTLP/HTTP when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, off (no spans at all) otherwise.

    The SDK reads the other standard variables itself: OTEL_TRACES_SAMPLER(_ARG),
    OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY and the like.
    """
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return Tracing(None)
    resource = Resource.create(
        {
            "service.name": settings.otel_service_name or service,
            "service.version": _version(),
            "service.namespace": settings.namespace,
        }
    )
    provider = TracerProvider(resource=resource, id_generator=DerivedIds())
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


def shutdown(tracing: Tracing) -> None:
    """Export the spans still queued (at exit)."""
    if tracing.provider is not None:
        tracing.provider.shutdown()


def _version() -> str:
    try:
        return version("waypost")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
