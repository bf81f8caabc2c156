"""TopicIdentity: which topics were created again since a consumer first saw them."""

from __future__ import annotations

import pytest

from waypost.bus.identity import TopicIdentity
from waypost.errors import BusError


class Broker:
    """The ids a broker answers with; ``down`` makes it unreachable."""

    def __init__(self, ids: dict[str, str | None]) -> None:
        self.ids = ids
        self.down = False
        self.asked: list[list[str]] = []

    def describe(self, names: list[str]) -> dict[str, str | None]:
        self.asked.append(names)
        if self.down:
            raise BusError("broker unreachable")
        return {name: self.ids.get(name) for name in names}


def test_learning_a_topic_asks_only_for_topics_not_seen_before() -> None:
    broker = Broker({"a": "id-a", "b": "id-b"})
    identity = TopicIdentity(broker.describe)

    identity.learn(["a"])
    identity.learn(["a", "b"])

    assert broker.asked == [["a"], ["b"]]
    assert (identity.known("a"), identity.known("b")) == ("id-a", "id-b")
    assert identity.take_recreated() == set()


def test_a_changed_id_marks_the_topic_recreated_once() -> None:
    broker = Broker({"a": "id-a", "b": "id-b"})
    identity = TopicIdentity(broker.describe)
    identity.learn(["a", "b"])

    broker.ids["a"] = "id-a2"
    current = identity.verify(["a", "b"])

    assert current == {"a": "id-a2", "b": "id-b"}
    assert identity.known("a") == "id-a2"
    assert identity.take_recreated() == {"a"}
    assert identity.take_recreated() == set()


def test_a_missing_topic_is_judged_when_it_is_back() -> None:
    broker = Broker({"a": "id-a"})
    identity = TopicIdentity(broker.describe)
    identity.learn(["a"])

    broker.ids["a"] = None  # a broker that restarted empty, before provisioning
    assert identity.verify(["a"]) == {"a": None}
    assert identity.known("a") == "id-a"
    assert identity.take_recreated() == set()

    broker.ids["a"] = "id-a2"
    identity.verify(["a"])
    assert identity.take_recreated() == {"a"}


def test_an_unreachable_broker_changes_nothing() -> None:
    broker = Broker({"a": "id-a"})
    identity = TopicIdentity(broker.describe)
    identity.learn(["a"])
    broker.down = True

    with pytest.raises(BusError):
        identity.verify(["a"])
    assert identity.known("a") == "id-a"


def test_a_failed_rewind_is_handed_out_again() -> None:
    identity = TopicIdentity(Broker({}).describe)
    identity.put_back(["a"])
    assert identity.take_recreated() == {"a"}
