"""Values that make no sense are refused before anything is installed, with a message
that names the value and says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.chart import render_error

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    (
        "a misspelt setting",
        {"config": {"reconcile_intervl_s": 2}},
        "at '/config': additional properties 'reconcile_intervl_s' not allowed",
    ),
    (
        "a setting with a value of its own",
        {"config": {"http_port": 9000}},
        "at '/config': additional properties 'http_port' not allowed",
    ),
    (
        "a log level the processes do not know",
        {"config": {"log_level": "TRACE"}},
        "at '/config/log_level': value must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'",
    ),
    (
        "a setting below its minimum",
        {"config": {"topic_partitions": 0}},
        "at '/config/topic_partitions': minimum: got 0, want 1",
    ),
    (
        "a setting of the wrong type",
        {"config": {"consume_batch_size": "many"}},
        "at '/config/consume_batch_size': got string, want integer",
    ),
    (
        "a public origin with a path",
        {"config": {"http_public_origin": "https://review.example.com/console"}},
        "at '/config/http_public_origin': 'https://review.example.com/console' does not "
        "match pattern",
    ),
    (
        "no Kafka",
        {"kafka": {"bootstrap": ""}},
        "at '/kafka/bootstrap': minLength: got 0, want 1",
    ),
    (
        "a database URL that is not PostgreSQL",
        {"database": {"url": "mysql://db/waypost"}},
        "at '/database/url': 'mysql://db/waypost' does not match pattern",
    ),
    (
        "an agent pool without a module",
        {"agents": [{"name": "support"}]},
        "at '/agents/0': missing property 'module'",
    ),
    (
        "an agent pool name that cannot name a Deployment",
        {"agents": [{"name": "Support_Team", "module": "agents.support"}]},
        "at '/agents/0/name': 'Support_Team' does not match pattern",
    ),
    (
        "a playbook file the loader would not read",
        {"playbooks": {"files": {"refund.json": "{}"}}},
        "at '/playbooks/files': additional properties 'refund.json' not allowed",
    ),
    (
        "resources without a memory limit",
        {"indexer": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": None}}},
        "at '/indexer/resources': missing property 'limits'",
    ),
    (
        "an unknown pull policy",
        {"image": {"pullPolicy": "Sometimes"}},
        "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
    ),
    (
        "a misspelt top-level key",
        {"consol": {"replicas": 3}},
        "at '': additional properties 'consol' not allowed",
    ),
]


@pytest.mark.parametrize(
    ("values", "message"),
    [pytest.param(values, message, id=what) for what, values, message in REFUSED],
)
def test_values_against_the_schema_are_refused(values: dict[str, Any], message: str) -> None:
    error = render_error(values)

    assert "values don't meet the specifications of the schema" in error
    assert message in error


# Rules across values, which the templates check with a message of their own.
INCONSISTENT: list[tuple[str, dict[str, Any], str]] = [
    (
        "two autoscalers for one pool",
        {
            "agents": [
                {
                    "name": "support",
                    "module": "agents.support",
                    "capabilities": ["triage"],
                    "autoscaling": {"enabled": True},
                    "keda": {"enabled": True},
                }
            ]
        },
        "agents[support]: autoscaling.enabled and keda.enabled are both true",
    ),
    (
        "KEDA without the capabilities to watch",
        {"agents": [{"name": "custom", "module": "acme.agents", "keda": {"enabled": True}}]},
        "agents[custom]: keda.enabled needs capabilities",
    ),
    (
        "two pools of one name",
        {
            "agents": [
                {"name": "support", "module": "agents.support"},
                {"name": "support", "module": "agents.billing"},
            ]
        },
        'agents: two pools are named "support"',
    ),
    (
        "no database",
        {"database": {"existingSecret": "", "url": ""}},
        "database: set database.existingSecret",
    ),
    (
        "an existing service account without its name",
        {"serviceAccount": {"create": False}},
        "serviceAccount.name: name the existing ServiceAccount",
    ),
]


@pytest.mark.parametrize(
    ("values", "message"),
    [pytest.param(values, message, id=what) for what, values, message in INCONSISTENT],
)
def test_inconsistent_values_are_refused(values: dict[str, Any], message: str) -> None:
    assert message in render_error(values)
