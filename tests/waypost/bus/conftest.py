"""The ``under_test`` fixture: every bus contract case runs on the in-memory bus AND on
the real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.waypost.bus.contract import BusUnderTest
from waypost.bus.kafka import KafkaBus
from waypost.bus.memory import MemoryBus
from waypost.settings import CommonSettings


@pytest.fixture(params=["memory", "kafka"])
def under_test(request: pytest.FixtureRequest, namespace: str) -> Iterator[BusUnderTest]:
    """The bus the contract runs against, with this test's namespace."""
    if request.param == "memory":
        case = BusUnderTest("memory", MemoryBus(), namespace)
    else:
        broker = request.getfixturevalue("broker")
        make_settings: Callable[..., Any] = request.getfixturevalue("make_settings")
        settings = make_settings(
            CommonSettings,
            # librdkafka holds a record for an unknown topic in case the topic shows up,
            # for this long (default 30 s) or the message timeout, whichever ends first,
            # before reporting it failed. Production keeps the defaults; the contract
            # only needs the failure reported, so it waits 0.5 s instead of many.
            kafka_client_config={"topic.metadata.propagation.max.ms": "500"},
        )
        case = BusUnderTest("kafka", KafkaBus(broker.bootstrap, settings), namespace)
    yield case
    case.close_all()
