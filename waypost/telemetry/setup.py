"""A process's telemetry, built from its settings in ``main()``: its tracer provider,
its Prometheus registry, its health, and the server of /metrics, /healthz and /readyz."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry

from waypost.settings import CommonSettings
from waypost.telemetry.metrics import new_registry
from waypost.telemetry.server import Health, serve
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


@dataclass(frozen=True)
class ProcessTelemetry:
    """What a service process traces, counts and reports its health with."""

    tracing: Tracing
    registry: CollectorRegistry
    health: Health


@contextmanager
def process_telemetry(
    settings: CommonSettings, service: str, stop: threading.Event
) -> Iterator[ProcessTelemetry]:
    """Telemetry of a process without an HTTP app of its own (orchestrator, agent
    workers, indexer): /metrics, /healthz and /readyz served on WAYPOST_METRICS_PORT for
    the block (ready once ``health.mark_ready()`` is called); queued spans are exported
    at its end."""
    built = ProcessTelemetry(tracing(settings, service), new_registry(), Health(stop))
    server = serve(settings.metrics_host, settings.metrics_port, built.registry, built.health)
    try:
        yield built
    finally:
        if server is not None:
            server.close()
        shutdown(built.tracing)


def _version() -> str:
    try:
        return version("waypost")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
