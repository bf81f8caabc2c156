"""The HTTP app on this test's schema, with a harness that opens escalations in it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from review_ui.app import create_app
from tests.orchestrator.test_reviews import ReviewHarness, write_playbooks
from waypost.bus.kafka import KafkaBus
from waypost.settings import HttpSettings
from waypost.stack.broker import EmbeddedBroker


@pytest.fixture
def review_harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    """Workflows and escalations made the way the orchestrator makes them."""
    return ReviewHarness(engine, namespace, write_playbooks(tmp_path / "playbooks"))


@pytest.fixture
def review_app(
    make_settings: Callable[..., Any],
    engine: Engine,
    broker: EmbeddedBroker,
    review_harness: ReviewHarness,
) -> FastAPI:
    """The app over the harness's playbooks, without a publisher (events stay in the
    schema's outbox)."""
    settings: HttpSettings = make_settings(HttpSettings)
    return create_app(
        settings,
        engine=engine,
        admin=KafkaBus(broker.bootstrap, settings).admin(),
        playbooks=review_harness.playbooks,
    )
