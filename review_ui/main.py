"""`waypost serve`: the HTTP app under uvicorn."""

from __future__ import annotations

import uvicorn

from orchestrator.playbooks.registry import PlaybookRegistry
from review_ui.app import create_app
from review_ui.hooks import check_hooks
from waypost import service
from waypost.settings import HttpSettings, load
from waypost.telemetry import setup as telemetry
from waypost.telemetry.metrics import new_registry

# Its own /metrics, /healthz and /readyz, and uvicorn's signal handling: of the services'
# start-up it shares logging, the endpoints and the engine.
SERVICE = service.Service("http", pool_size=10)


def main(settings: HttpSettings | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    settings = settings or load(HttpSettings)
    check_hooks(settings)  # before anything connects: a bad hook file stops start-up
    with service.connected(SERVICE, settings) as connections:
        bus = connections.bus()
        tracing = telemetry.tracing(settings, SERVICE.process)
        app = create_app(
            settings,
            engine=connections.engine,
            admin=bus.admin(),
            playbooks=PlaybookRegistry.load(settings.playbook_dirs),
            publisher=bus.publisher("http"),
            tracing=tracing,
            registry=new_registry(),
        )
        try:
            uvicorn.run(
                app,
                host=settings.http_host,
                port=settings.http_port,
                log_level=settings.log_level.lower(),
                access_log=settings.log_level == "DEBUG",
            )
        finally:
            telemetry.shutdown(tracing)
    return 0
