"""`waypost serve`: the HTTP app under uvicorn."""

from __future__ import annotations

import uvicorn

from orchestrator.playbooks.registry import PlaybookRegistry
from review_ui.app import create_app
from waypost.bus.kafka import KafkaBus
from waypost.db import make_engine
from waypost.lifecycle import configure_logging
from waypost.settings import HttpSettings, load
from waypost.stack import stackfile
from waypost.telemetry import setup as telemetry
from waypost.telemetry.metrics import new_registry


def main(settings: HttpSettings | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    settings = settings or load(HttpSettings)
    configure_logging(settings.log_level, name="http", format=settings.log_format)
    endpoints = stackfile.resolve(settings, need=("kafka_bootstrap", "database_url"))
    engine = make_engine(
        endpoints.database_url, schema=settings.database_schema, pool_size=10, app="waypost-http"
    )
    bus = KafkaBus(endpoints.kafka_bootstrap, settings)
    tracing = telemetry.tracing(settings, "waypost-http")
    app = create_app(
        settings,
        engine=engine,
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
        engine.dispose()
    return 0
