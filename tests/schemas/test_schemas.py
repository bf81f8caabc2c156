"""The event contracts: one valid 2020-12 JSON Schema per event type, found by all_schemas()."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema_rs
import pytest

import schemas
from waypost.events import PAYLOAD_TYPES

EVENT_TYPES = [
    "goal.submitted",
    "task.dispatched",
    "task.completed",
    "task.failed",
    "task.escalated",
    "decision.recorded",
    "workflow.started",
    "workflow.completed",
    "workflow.failed",
    "workflow.cancelled",
    "policy.decided",
    "budget.threshold_reached",
    "budget.exhausted",
    "decision_quality.drifted",
]
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _files() -> list[str]:
    return sorted(e.name for e in resources.files("schemas").iterdir() if e.name.endswith(".json"))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_a_schema_file(event_type: str) -> None:
    assert f"{event_type}.v1.json" in _files()
    assert schemas.latest(event_type).event_type == event_type


def test_all_schemas_finds_exactly_the_event_types() -> None:
    assert schemas.event_types() == frozenset(EVENT_TYPES)
    assert set(PAYLOAD_TYPES) == set(EVENT_TYPES)


def test_the_shared_definitions_are_not_an_event_type() -> None:
    assert "common" not in schemas.event_types()
    assert list(schemas.shared_documents()) == ["https://schemas.waypost.dev/common.v1.json"]


@pytest.mark.parametrize("file_name", _files())
def test_every_schema_file_is_a_valid_2020_12_schema(file_name: str) -> None:
    document = json.loads(resources.files("schemas").joinpath(file_name).read_text())

    jsonschema_rs.meta.validate(document)
    assert document["$schema"] == DRAFT_2020_12


def test_the_meta_check_would_catch_a_broken_schema() -> None:
    # Guards the test above: meta.validate must reject a schema, not just parse JSON.
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.meta.validate({"$schema": DRAFT_2020_12, "type": 12})


@pytest.mark.parametrize("schema", schemas.all_schemas(), ids=lambda s: s.uri)
def test_the_id_of_a_schema_is_its_uri(schema: schemas.SchemaFile) -> None:
    assert schema.document["$id"] == schema.uri
    assert schema.uri == f"{schemas.BASE_URI}{schema.event_type}.v{schema.version}.json"
    assert schema.document["title"] == f"waypost.{schema.event_type}"


def test_every_reference_resolves_against_the_shared_documents() -> None:
    registry = jsonschema_rs.Registry(list(schemas.shared_documents().items()))

    for schema in schemas.all_schemas():
        # Building the validator resolves every $ref; an unresolvable one raises.
        jsonschema_rs.validator_for(schema.document, registry=registry)


def test_latest_of_an_unknown_type_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        schemas.latest("task.exploded")


def _validator(event_type: str) -> jsonschema_rs.Validator:
    registry = jsonschema_rs.Registry(list(schemas.shared_documents().items()))
    return jsonschema_rs.validator_for(
        schemas.latest(event_type).document, registry=registry, validate_formats=True
    )


DECISION = {
    "escalation_id": "esc-1",
    "workflow_id": "wf-1",
    "task_id": "task-1",
    "reviewer": "ada",
    "version": 1,
    "digest": "0" * 64,
}


@pytest.mark.parametrize(
    ("decision", "valid"),
    [
        ({"action": "approve"}, True),
        ({"action": "edit"}, False),
        ({"action": "edit", "output": {"reply": "new"}}, True),
        ({"action": "reject"}, False),
        ({"action": "reject", "reason": "wrong customer"}, True),
        ({"action": "retry"}, True),
        ({"action": "comment", "comment": "looks fine"}, True),
        ({"action": "delete"}, False),
    ],
)
def test_decision_recorded_requires_what_each_action_needs(
    decision: dict[str, object], valid: bool
) -> None:
    assert _validator("decision.recorded").is_valid({**DECISION, **decision}) is valid


def test_decision_digest_must_be_a_sha256_hex_digest() -> None:
    validator = _validator("decision.recorded")

    assert not validator.is_valid({**DECISION, "action": "approve", "digest": "abc"})


@pytest.mark.parametrize(
    ("deadline", "valid"),
    [
        ("2024-05-06T07:08:09Z", True),
        ("2024-05-06T07:08:09.5+02:00", True),
        ("2024-05-06", False),
        ("soon", False),
    ],
)
def test_task_dispatched_deadline_is_a_date_time(deadline: str, valid: bool) -> None:
    body = {
        "workflow_id": "wf-1",
        "task_id": "t-1",
        "step": "triage",
        "capability": "triage",
        "attempt": 1,
        "goal_type": "support.ticket",
        "input": {},
        "deadline": deadline,
    }

    assert _validator("task.dispatched").is_valid(body) is valid


def test_task_schemas_share_the_task_reference_fields() -> None:
    body = {
        "output": {},
        "confidence": 1,
        "agent": {"capability": "c", "version": "1", "instance": "i"},
    }
    task = {"workflow_id": "wf", "task_id": "t", "step": "s", "capability": "c", "attempt": 1}
    validator = _validator("task.completed")

    assert validator.is_valid({**task, **body})
    for field in task:
        partial = {k: v for k, v in task.items() if k != field}
        assert not validator.is_valid({**partial, **body}), field
