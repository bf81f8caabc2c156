"""Telemetry at the edges: traces (OpenTelemetry), metrics (Prometheus) and decision logs.

Business code receives a :class:`Tracing` and a metrics object built in ``main()``;
nothing here installs global state.
"""

from waypost.telemetry.tracing import NO_TRACING, Tracing, trace_id_of

__all__ = ["NO_TRACING", "Tracing", "trace_id_of"]
