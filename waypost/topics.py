"""Topic and consumer-group names, all under one namespace (default ``waypost``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from waypost.bus.base import TopicSpec
from waypost.settings import CommonSettings

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class Topics:
    """Names of every topic and group of one Waypost installation."""

    namespace: str

    @property
    def goals(self) -> str:
        """Goals to plan (``goal.submitted``)."""
        return f"{self.namespace}.goals"

    @property
    def results(self) -> str:
        """Agent results (``task.completed`` / ``task.failed``)."""
        return f"{self.namespace}.results"

    @property
    def decisions(self) -> str:
        """Reviewer decisions (``decision.recorded``)."""
        return f"{self.namespace}.decisions"

    @property
    def workflow_events(self) -> str:
        """Workflow lifecycle for downstream subscribers."""
        return f"{self.namespace}.workflow.events"

    @property
    def governance(self) -> str:
        """Governance decisions and budget events, keyed by agent, for downstream
        subscribers (``policy.decided``, ``budget.threshold_reached``, ``budget.exhausted``)."""
        return f"{self.namespace}.governance"

    def tasks(self, capability: str) -> str:
        """Tasks of one capability."""
        return f"{self.namespace}.tasks.{capability}"

    @staticmethod
    def dlq(topic: str) -> str:
        """Dead letters of a topic."""
        return topic + DLQ_SUFFIX

    def agent_group(self, capability: str) -> str:
        """Consumer group of the agents of one capability."""
        return f"{self.namespace}.agents.{capability}"

    @property
    def orchestrator_group(self) -> str:
        """Consumer group of the orchestrators."""
        return f"{self.namespace}.orchestrator"

    def short_name(self, topic: str) -> str:
        """A topic's name without the namespace (as used in partition overrides)."""
        return topic.removeprefix(self.namespace + ".")

    def all_topics(self, capabilities: Iterable[str]) -> list[str]:
        """Every topic of an installation with these capabilities, dead-letter topics too."""
        consumed = [self.goals, self.results, self.decisions]
        consumed += [self.tasks(c) for c in sorted(set(capabilities))]
        produced = [self.workflow_events, self.governance]  # for subscribers; no dead letters
        return consumed + [self.dlq(t) for t in consumed] + produced

    def specs(self, capabilities: Iterable[str], settings: CommonSettings) -> list[TopicSpec]:
        """Topics to provision, with partition counts from settings."""
        return [
            TopicSpec(
                name,
                settings.topic_partition_overrides.get(
                    self.short_name(name), settings.topic_partitions
                ),
            )
            for name in self.all_topics(capabilities)
        ]
