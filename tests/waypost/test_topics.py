"""Topic and group names under one namespace, and the partitions each topic gets."""

from __future__ import annotations

from waypost.bus.base import TopicSpec
from waypost.settings import CommonSettings
from waypost.topics import Topics

TOPICS = Topics("acme")


def test_names_live_under_the_namespace() -> None:
    assert TOPICS.goals == "acme.goals"
    assert TOPICS.results == "acme.results"
    assert TOPICS.decisions == "acme.decisions"
    assert TOPICS.workflow_events == "acme.workflow.events"
    assert TOPICS.governance == "acme.governance"
    assert TOPICS.tasks("triage") == "acme.tasks.triage"
    assert TOPICS.agent_group("triage") == "acme.agents.triage"
    assert TOPICS.orchestrator_group == "acme.orchestrator"


def test_dead_letters_go_to_the_topic_name_plus_dlq() -> None:
    assert Topics.dlq("acme.results") == "acme.results.dlq"
    assert TOPICS.dlq(TOPICS.tasks("reply")) == "acme.tasks.reply.dlq"


def test_short_name_drops_only_the_namespace_prefix() -> None:
    assert TOPICS.short_name("acme.tasks.triage") == "tasks.triage"
    assert TOPICS.short_name("other.goals") == "other.goals"
    assert TOPICS.short_name("acmeish.goals") == "acmeish.goals"


def test_all_topics_has_each_consumed_topic_with_its_dead_letters() -> None:
    topics = TOPICS.all_topics(["reply", "triage", "reply"])

    assert topics == [
        "acme.goals",
        "acme.results",
        "acme.decisions",
        "acme.tasks.reply",
        "acme.tasks.triage",
        "acme.goals.dlq",
        "acme.results.dlq",
        "acme.decisions.dlq",
        "acme.tasks.reply.dlq",
        "acme.tasks.triage.dlq",
        "acme.workflow.events",
        "acme.governance",
    ]
    assert len(set(topics)) == len(topics)


def test_specs_take_partitions_from_settings_with_overrides() -> None:
    settings = CommonSettings(
        topic_partitions=3, topic_partition_overrides={"tasks.triage": 8, "goals.dlq": 1}
    )

    specs = {s.name: s for s in TOPICS.specs(["triage"], settings)}

    assert specs["acme.tasks.triage"] == TopicSpec("acme.tasks.triage", 8)
    assert specs["acme.goals.dlq"] == TopicSpec("acme.goals.dlq", 1)
    assert specs["acme.goals"] == TopicSpec("acme.goals", 3)
    assert specs["acme.tasks.triage.dlq"].partitions == 3
