"""Waypost: Kafka-based agent orchestration with a human review console.

The public SDK for agent authors::

    from waypost import AgentContext, AgentResult, agent
"""

from waypost.errors import NonRetryableError
from waypost.sdk import (
    Agent,
    AgentContext,
    AgentEnvironment,
    AgentResult,
    Approval,
    TaskInfo,
    agent,
)

__all__ = [
    "Agent",
    "AgentContext",
    "AgentEnvironment",
    "AgentResult",
    "Approval",
    "NonRetryableError",
    "TaskInfo",
    "agent",
]
