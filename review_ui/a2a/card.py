"""The Agent Card (pure): Waypost's goal types as skills, the JSON-RPC endpoint in both
protocol versions the SDK serves on it, and the bearer-token scheme it requires."""

from __future__ import annotations

import json
from collections.abc import Iterable

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from orchestrator.playbooks.model import Playbook
from review_ui.a2a.messages import SKILL_KEY

ENDPOINT = "/a2a"
SCHEME = "bearer"
# The card extension whose params map each skill id to its goal input's JSON Schema
# (AgentSkill has no field for one).
INPUT_SCHEMAS = "urn:waypost:a2a:skill-input-schemas:v1"
JSON = "application/json"


def agent_card(playbooks: Iterable[Playbook], *, base_url: str, version: str) -> AgentCard:
    """The card of the Waypost installation at ``base_url`` (no trailing slash)."""
    playbooks = sorted(playbooks, key=lambda p: p.type)
    url = base_url + ENDPOINT
    return AgentCard(
        name="Waypost",
        description=(
            "Runs goals as workflows of agent tasks, with people reviewing what agents are "
            "unsure of. Each skill is a goal type: send a message whose metadata names the "
            f"skill as {SKILL_KEY!r} and whose one data part is the goal input (its JSON "
            f"Schema is in the {INPUT_SCHEMAS} extension). A task waiting for a reviewer is "
            "input-required until one decides in the Waypost console."
        ),
        version=version,
        supported_interfaces=[
            AgentInterface(
                url=url, protocol_binding=TransportProtocol.JSONRPC, protocol_version=version_
            )
            for version_ in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        capabilities=AgentCapabilities(
            streaming=True,
            push_notifications=False,
            extended_agent_card=False,
            extensions=[
                AgentExtension(
                    uri=INPUT_SCHEMAS,
                    description="The JSON Schema of each skill's goal input, by skill id "
                    "(an empty schema: any JSON object).",
                    required=False,
                    params=_struct({p.type: dict(p.input_schema or {}) for p in playbooks}),
                )
            ],
        ),
        security_schemes={
            SCHEME: SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="bearer",
                    description="A Waypost API token (`waypost token create --role ROLE`): "
                    "message/send, message/stream and tasks/cancel need the admin role, "
                    "reading tasks any role.",
                )
            )
        },
        security_requirements=[SecurityRequirement(schemes={SCHEME: StringList()})],
        default_input_modes=[JSON],
        default_output_modes=[JSON],
        skills=[_skill(playbook) for playbook in playbooks],
    )


def _skill(playbook: Playbook) -> AgentSkill:
    return AgentSkill(
        id=playbook.type,
        name=playbook.type,
        description=playbook.description.strip() or f"Run a {playbook.type} goal.",
        tags=["goal", playbook.type.split(".")[0]],
        input_modes=[JSON],
        output_modes=[JSON],
    )


def _struct(value: dict[str, object]) -> Struct:
    # Through JSON: a schema read from YAML may hold nested mappings of other types.
    return ParseDict(json.loads(json.dumps(value, default=str)), Struct())
