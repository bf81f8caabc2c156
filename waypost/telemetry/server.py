"""/metrics, /healthz and /readyz for the processes that have no HTTP app of their own
(orchestrator, agent workers, indexer), on ``WAYPOST_METRICS_PORT``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry

from waypost.errors import ConfigError
from waypost.outages import Outages
from waypost.telemetry.metrics import CONTENT_TYPE, exposition

log = logging.getLogger(__name__)


class Health:
    """What /healthz and /readyz answer: the process is alive until ``stop`` is set;
    it is ready once ``mark_ready`` was called, while it rides out no outage of the
    database or the broker (``outages``), and when ``check`` (if given) passes."""

    def __init__(self, stop: threading.Event, check: Callable[[], str | None] | None = None):
        self._stop = stop
        self._ready = threading.Event()
        self._check = check
        self.outages = Outages()

    def mark_ready(self) -> None:
        """The process has started its work."""
        self._ready.set()

    def alive(self) -> str | None:
        """None when alive, else why not."""
        return "stopping" if self._stop.is_set() else None

    def ready(self) -> str | None:
        """None when ready, else why not."""
        if self._stop.is_set():
            return "stopping"
        outage = self.outages.reason()
        if not self._ready.is_set():
            return f"starting ({outage})" if outage else "starting"
        if outage is not None:
            return outage
        return self._check() if self._check is not None else None


class OpsServer:
    """A small threaded HTTP server; ``close`` stops it."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Health):
        handler = _handler(registry, health)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"WAYPOST_METRICS_PORT: cannot serve metrics on {host}:{port} ({exc.strerror}); "
                "choose a free port"
            ) from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()
        log.info("serving /metrics, /healthz and /readyz on %s:%d", host, self.port)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def _handler(registry: CollectorRegistry, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, exposition(registry), CONTENT_TYPE)
            elif path in ("/healthz", "/readyz"):
                problem = health.alive() if path == "/healthz" else health.ready()
                answer = (
                    {"status": "ok"}
                    if problem is None
                    else {
                        "status": "unavailable",
                        "reason": problem,
                    }
                )
                status = 200 if problem is None else 503
                self._send(status, json.dumps(answer).encode() + b"\n", "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # Prometheus scrapes every few seconds; no access log

    return Handler


def serve(
    host: str, port: int | None, registry: CollectorRegistry, health: Health
) -> OpsServer | None:
    """An ops server when a port is configured."""
    return OpsServer(host, port, registry, health) if port is not None else None
