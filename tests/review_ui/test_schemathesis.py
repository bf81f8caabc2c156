"""Property-based tests of the JSON API from its own OpenAPI document (schemathesis): no
request the schema allows, or almost allows, makes the server fail with a 5xx.

The app runs in-process (ASGI) on this test's database schema, without a broker
publisher: goals it accepts stay in this schema's outbox and reach no topic another test
reads. (``schemathesis.pytest.from_fixture`` does not run under pytest 9, so each
operation's cases are drawn with ``as_strategy`` under explicit Hypothesis settings.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from sqlalchemy import Engine

from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.test_reviews import ReviewHarness, write_playbooks
from waypost.bus.kafka import KafkaBus
from waypost.settings import HttpSettings
from waypost.stack.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25
OPERATIONS = {
    "GET /api/v1/escalations",
    "GET /api/v1/escalations/{escalation_id}",
    "POST /api/v1/escalations/{escalation_id}/assign",
    "POST /api/v1/escalations/{escalation_id}/claim",
    "POST /api/v1/escalations/{escalation_id}/comments",
    "POST /api/v1/escalations/{escalation_id}/decision",
    "POST /api/v1/escalations/{escalation_id}/unclaim",
    "POST /api/v1/goals",
    "GET /api/v1/workflows",
    "GET /api/v1/workflows/{workflow_id}",
    "GET /api/v1/breakers",
    "GET /api/v1/agents",
    "GET /api/v1/dlq",
    "GET /api/v1/dlq/stats",
    "GET /api/v1/dlq/replays",
    "GET /api/v1/dlq/replays/{request_id}",
    "GET /api/v1/dlq/{dead_letter_id}",
    "POST /api/v1/dlq/replays",
    "POST /api/v1/dlq/resolve",
    "POST /api/v1/dlq/discard",
}


@pytest.fixture
def admin_token(engine: Engine) -> str:
    with engine.begin() as conn:
        secret, _ = auth_store.create_token(conn, name="schemathesis", role=Role.ADMIN)
    return secret


@pytest.fixture
def harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    return ReviewHarness(engine, namespace, write_playbooks(tmp_path / "playbooks"))


@pytest.fixture
def api_schema(
    make_settings: Callable[..., Any],
    engine: Engine,
    broker: EmbeddedBroker,
    harness: ReviewHarness,
) -> Any:
    """The app's OpenAPI schema (operations under /api/v1)."""
    settings: HttpSettings = make_settings(HttpSettings)
    app = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(broker.bootstrap, settings).admin(),
        playbooks=harness.playbooks,
    )
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app).include(
        path_regex="^/api/v1/"
    )


def fuzz(
    operation: Any, mode: GenerationMode, headers: dict[str, str], path: dict[str, str]
) -> set[int]:
    """Call one operation with generated cases; the statuses it answered with."""
    seen: set[int] = set()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # A failure is reported as found (no shrinking, first bug only): bounded time.
        phases=[Phase.explicit, Phase.generate, Phase.target],
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path or None))
    def exercise(case: Any) -> None:
        response = case.call(headers=headers)
        seen.add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    exercise()
    return seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_the_api_fail(
    api_schema: Any, admin_token: str, harness: ReviewHarness, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {f"{op.method.upper()} {op.path}" for op in operations}
    assert labels == OPERATIONS  # a new operation is fuzzed too: add it here
    headers = {"Authorization": f"Bearer {admin_token}"}
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}

    for number, operation in enumerate(operations):
        label = f"{operation.method.upper()} {operation.path}"
        # Escalation and workflow operations get real ids, each its own open escalation,
        # so generated bodies reach the code behind the 404.
        path = {}
        if "{escalation_id}" in operation.path or "{workflow_id}" in operation.path:
            escalation = harness.escalate(f"g-fuzz-{number}")
            path = {"escalation_id": escalation.id, "workflow_id": f"g-fuzz-{number}"}
            path = {k: v for k, v in path.items() if "{" + k + "}" in operation.path}
        try:
            statuses[label] = fuzz(operation, mode, headers, path)
        except Unsatisfiable:
            # Nothing to break: only a path parameter, here fixed (negative mode).
            assert mode is GenerationMode.NEGATIVE, label
        except Exception as exc:
            failures[label] = f"{type(exc).__name__}: {exc}"[:3000]

    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert all(statuses.values()), statuses  # every operation fuzzed was called
    assert len(statuses) >= (len(OPERATIONS) if mode is GenerationMode.POSITIVE else 5)
