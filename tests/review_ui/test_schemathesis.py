"""Property-based tests of the JSON API from its own OpenAPI document (schemathesis): the
document tells the truth about every operation.

Every operation is called with generated requests, positive (valid by the schema) and
negative (breaking it), as an admin, as roles that may not call it, and with no
credentials; each response must pass these checks:

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: the status is one the operation lists;
- ``content_type_conformance``: the media type is the one listed for that status
  (``application/problem+json`` for every error);
- ``response_headers_conformance``: the headers listed as required are there and valid
  (``WWW-Authenticate`` on 401, ``Retry-After`` on 429 and 503, ``Location`` on 202);
- ``response_schema_conformance``: the body matches the listed schema (the problem
  schema forbids members the document does not declare);
- ``ignored_auth`` (valid requests): a request that succeeded is refused (401) when
  sent again without credentials and with a wrong token: the security is enforced;
- ``positive_data_acceptance`` for the operations in ``STATED``: a request valid by the
  schema is accepted, or refused only for the state of the data (404, 409).

Left out, and why:

- ``positive_data_acceptance`` for the other operations: each refuses some requests by a
  rule JSON Schema cannot state (a goal's input against its playbook's schema, a
  reject's reason, an edit against the step's output schema, an assignee that must be a
  user, a filter expression's grammar, a ``since`` that must be a duration or a time);
  the rule is in the operation's description and the refusal a listed 422 (or 400).
- ``negative_data_rejection``: FastAPI reads a query parameter given twice as its last
  value, so a request that breaks the schema only by repeating one (schemathesis's way
  of sending an array where a string is declared, e.g. ``type=a&type=b``) is answered
  200: the framework's leniency, and harmless.
- ``missing_required_header`` and ``unsupported_method`` only judge cases of
  schemathesis's coverage phase, which ``as_strategy`` does not draw; what they would
  show is tested directly: the runs without credentials (401 for every operation), and
  tests/review_ui/test_openapi.py (405 with ``Allow``).

The app runs in-process (ASGI) on this test's database schema, without a broker
publisher: goals it accepts stay in this schema's outbox and reach no topic another test
reads. (``schemathesis.pytest.from_fixture`` does not run under pytest 9, so each
operation's cases are drawn with ``as_strategy`` under explicit Hypothesis settings.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, select

from orchestrator.dead_letters.orders import ReplayOrder
from orchestrator.dead_letters.records import index_row
from orchestrator.dead_letters.replay import Replayer
from orchestrator.store import dead_letters as dead_letter_rows
from orchestrator.store.dead_letters import DeadLetterFilter
from orchestrator.store.tables import dead_letters
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.test_reviews import ReviewHarness, write_playbooks
from tests.support.schedules import add_schedule
from waypost.bus.dead_letters import Failure, dead_letter
from waypost.bus.kafka import KafkaBus
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.events import default_codec, utcnow
from waypost.settings import HttpSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.topics import Topics

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 20  # per operation and mode, as an admin
ANY_ID_EXAMPLES = 10  # per operation with a path parameter, drawn rather than real
AUTH_EXAMPLES = 5  # per operation, without credentials or with a role refused
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# For valid requests only: what they show of auth, invalid ones would only repeat.
POSITIVE_CHECKS = [ignored_auth]
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
    "GET /api/v1/workflows/{workflow_id}/plan-attempts",
    "GET /api/v1/workflows/{workflow_id}/escalations",
    "GET /api/v1/workflows/{workflow_id}/dead-letters",
    "GET /api/v1/workflows/{workflow_id}/timeline",
    "POST /api/v1/workflows/{workflow_id}/cancel",
    "POST /api/v1/workflows/{workflow_id}/steps/{step}/retry",
    "POST /api/v1/workflows/{workflow_id}/resume",
    "GET /api/v1/breakers",
    "POST /api/v1/breakers/{capability}/open",
    "POST /api/v1/breakers/{capability}/close",
    "GET /api/v1/policy-decisions",
    "GET /api/v1/budgets",
    "GET /api/v1/audit",
    "GET /api/v1/decision-quality",
    "GET /api/v1/decision-quality/decisions",
    "GET /api/v1/agents",
    "GET /api/v1/dlq",
    "GET /api/v1/dlq/stats",
    "GET /api/v1/dlq/replays",
    "GET /api/v1/dlq/replays/{request_id}",
    "GET /api/v1/dlq/{dead_letter_id}",
    "POST /api/v1/dlq/replays",
    "POST /api/v1/dlq/resolve",
    "POST /api/v1/dlq/discard",
    "GET /api/v1/schedules",
    "POST /api/v1/schedules",
    "GET /api/v1/schedules/{name}",
    "DELETE /api/v1/schedules/{name}",
    "POST /api/v1/schedules/{name}/pause",
    "POST /api/v1/schedules/{name}/resume",
}
# Operations whose every rule is in the schema (see the module docstring).
STATED = {
    "GET /api/v1/escalations",
    "GET /api/v1/escalations/{escalation_id}",
    "POST /api/v1/escalations/{escalation_id}/claim",
    "POST /api/v1/escalations/{escalation_id}/unclaim",
    "GET /api/v1/workflows/{workflow_id}",
    "GET /api/v1/workflows/{workflow_id}/plan-attempts",
    "GET /api/v1/workflows/{workflow_id}/escalations",
    "GET /api/v1/workflows/{workflow_id}/dead-letters",
    "GET /api/v1/workflows/{workflow_id}/timeline",
    "GET /api/v1/breakers",
    "GET /api/v1/decision-quality",
    "GET /api/v1/decision-quality/decisions",
    "GET /api/v1/agents",
    "GET /api/v1/dlq/stats",
    "GET /api/v1/dlq/replays",
    "GET /api/v1/dlq/replays/{request_id}",
    "GET /api/v1/dlq/{dead_letter_id}",
}
DEAD_LETTER_OPERATIONS = {op for op in OPERATIONS if " /api/v1/dlq" in op}
# Who may not call what (review_ui/auth/roles.py): these answer 403, as documented.
# Changing schedules is for admins.
SCHEDULE_CHANGES = {
    "POST /api/v1/schedules",
    "DELETE /api/v1/schedules/{name}",
    "POST /api/v1/schedules/{name}/pause",
    "POST /api/v1/schedules/{name}/resume",
}
# Changing workflows and circuits is for admins; governance is for analysts and admins.
OPERATIONS_CHANGES = {
    "POST /api/v1/workflows/{workflow_id}/steps/{step}/retry",
    "POST /api/v1/workflows/{workflow_id}/resume",
    "POST /api/v1/breakers/{capability}/open",
    "POST /api/v1/breakers/{capability}/close",
}
GOVERNANCE_READS = {
    "GET /api/v1/policy-decisions",
    "GET /api/v1/budgets",
    "GET /api/v1/audit",
}
REFUSED = {
    Role.REVIEWER: DEAD_LETTER_OPERATIONS
    | SCHEDULE_CHANGES
    | OPERATIONS_CHANGES
    | GOVERNANCE_READS
    | {
        "GET /api/v1/workflows/{workflow_id}/dead-letters",
        "POST /api/v1/goals",
        "POST /api/v1/escalations/{escalation_id}/assign",
        "POST /api/v1/workflows/{workflow_id}/cancel",
    },
    Role.ANALYST: SCHEDULE_CHANGES
    | OPERATIONS_CHANGES
    | {
        "POST /api/v1/goals",
        "POST /api/v1/workflows/{workflow_id}/cancel",
        "POST /api/v1/escalations/{escalation_id}/assign",
        "POST /api/v1/escalations/{escalation_id}/claim",
        "POST /api/v1/escalations/{escalation_id}/comments",
        "POST /api/v1/escalations/{escalation_id}/decision",
        "POST /api/v1/escalations/{escalation_id}/unclaim",
    },
}


@pytest.fixture
def harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    return ReviewHarness(engine, namespace, write_playbooks(tmp_path / "playbooks"))


@pytest.fixture
def tokens(engine: Engine) -> dict[Role, str]:
    """A bearer token per role."""
    with engine.begin() as conn:
        return {
            role: auth_store.create_token(conn, name=f"fuzz-{role}", role=role)[0] for role in Role
        }


@pytest.fixture
def app(
    make_settings: Callable[..., Any],
    engine: Engine,
    broker: EmbeddedBroker,
    harness: ReviewHarness,
) -> Iterator[FastAPI]:
    """The app; replays it started are stopped before the schema goes."""
    # ignored_auth repeats each success with a wrong token, which counts against the
    # client's address: under the default limits the client would soon get only 429s.
    settings: HttpSettings = make_settings(
        HttpSettings, throttle_client_delay_after=10000, throttle_client_lock_after=10000
    )
    app = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(broker.bootstrap, settings).admin(),
        playbooks=harness.playbooks,
    )
    yield app
    app.state.waypost.replays.close()


@pytest.fixture
def api_schema(app: FastAPI) -> Any:
    """The app's OpenAPI schema (operations under /api/v1)."""
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app).include(
        path_regex="^/api/v1/"
    )


def index_dead_letter(engine: Engine, namespace: str, n: int) -> int:
    """A new pending dead letter of a record on the goals topic: its id."""
    topics = Topics(namespace)
    now = utcnow()
    source = ReceivedRecord(topics.goals, 0, n, b"key", b'{"n": %d}' % n)
    failed = dead_letter(source, Failure(ValueError("no"), 1, now, now), group="g")
    row = index_row(
        ReceivedRecord(failed.topic, 0, n, failed.key, failed.value, failed.headers), topics
    )
    with engine.begin() as conn:
        dead_letter_rows.index(conn, rows=[row])
        found = conn.execute(
            select(dead_letters.c.id).where(dead_letters.c.fingerprint == row["fingerprint"])
        ).scalar_one()
    return int(found)


def replay_request(engine: Engine, namespace: str, dead_letter_id: int) -> str:
    """A replay request to read (made, never run): its id."""
    replayer = Replayer(
        engine=engine,
        codec=default_codec(),
        namespace=namespace,
        admin=MemoryBus().admin(),
        publisher=None,
        clock=utcnow,
    )
    filters = DeadLetterFilter(status=None, ids=(dead_letter_id,))
    state, _ = replayer.submit(ReplayOrder("fuzz-replay", "fuzz", filters, rate=None))
    return state.id


@pytest.fixture
def real_ids(
    engine: Engine, namespace: str, harness: ReviewHarness
) -> Callable[[str], dict[str, str]]:
    """Path parameters naming things that exist, so generated requests get past the 404
    to the code behind it: each call a new open escalation (or schedule), and a dead
    letter."""
    numbers = itertools.count()
    letter = index_dead_letter(engine, namespace, 0)
    request_id = replay_request(engine, namespace, letter)

    def ids(path: str) -> dict[str, str]:
        goal = f"g-fuzz-{next(numbers)}"
        found = {"dead_letter_id": str(letter), "request_id": request_id, "workflow_id": goal}
        if "{escalation_id}" in path or "{workflow_id}" in path:
            found["escalation_id"] = harness.escalate(goal).id
        if "{name}" in path:  # a schedule each time (a DELETE may remove it)
            found["name"] = add_schedule(engine, f"fuzz-{next(numbers)}")
        found["capability"] = "echo"
        return {k: v for k, v in found.items() if "{" + k + "}" in path}

    return ids


def label(operation: Any) -> str:
    """``METHOD /path`` of an operation."""
    return f"{operation.method.upper()} {operation.path}"


def operations(api_schema: Any) -> Iterator[Any]:
    """Every operation of the document (each one is fuzzed: a new one is added here)."""
    found = [result.ok() for result in api_schema.get_all_operations()]
    assert {label(op) for op in found} == OPERATIONS
    yield from found


def fuzz(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    path: dict[str, str] | None = None,
    *,
    examples: int = MAX_EXAMPLES,
) -> set[int]:
    """Call one operation with generated cases, checking each response; the statuses it
    answered with."""
    seen: set[int] = set()
    checks = list(CHECKS)
    if mode is GenerationMode.POSITIVE:
        checks += POSITIVE_CHECKS
        if label(operation) in STATED:
            checks.append(positive_data_acceptance)

    @settings(
        max_examples=examples,
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
        case.validate_response(response, checks=checks)

    exercise()
    return seen


def run_all(
    calls: Iterator[tuple[str, Callable[[], set[int]]]], *, negative: bool = False
) -> dict[str, set[int]]:
    """Run each labelled fuzz call; every failure at once, or the statuses per label."""
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    for name, call in calls:
        try:
            statuses[name] = call()
        except Unsatisfiable:
            # Nothing to break: the only parameter is a path parameter, here fixed.
            assert negative, name
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    return statuses


@pytest.mark.parametrize(
    "mode",
    # Each mode takes 15-45 s over the whole API: make test-slow (CI runs it); the
    # authorization matrix still calls every route in make test.
    [
        pytest.param(GenerationMode.POSITIVE, marks=pytest.mark.slow),
        pytest.param(GenerationMode.NEGATIVE, marks=pytest.mark.slow),
    ],
)
def test_every_answer_of_an_admin_is_documented(
    api_schema: Any,
    tokens: dict[Role, str],
    real_ids: Callable[[str], dict[str, str]],
    mode: GenerationMode,
) -> None:
    headers = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    # On things that exist (their 200s and 409s are checked too), then on generated
    # path parameters (their 404s and 422s: e.g. a dead-letter id beyond a bigint).
    statuses = run_all(
        itertools.chain(
            (
                (label(op), lambda op=op: fuzz(op, mode, headers, real_ids(op.path)))
                for op in operations(api_schema)
            ),
            (
                (
                    f"{label(op)} (any id)",
                    lambda op=op: fuzz(op, mode, headers, examples=ANY_ID_EXAMPLES),
                )
                for op in operations(api_schema)
                if "{" in op.path
            ),
        ),
        negative=mode is GenerationMode.NEGATIVE,
    )

    assert all(statuses.values()), statuses  # every operation fuzzed was called
    assert not {name for name, seen in statuses.items() if seen & {401, 403}}  # the admin's
    if mode is GenerationMode.POSITIVE:
        assert set(statuses) >= OPERATIONS
        # Valid requests on things that exist succeed: not only refusals were checked.
        succeeded = {name for name, seen in statuses.items() if any(s < 300 for s in seen)}
        assert succeeded >= STATED
    else:
        assert len(statuses) >= 5


def test_without_credentials_every_operation_answers_a_documented_401(
    api_schema: Any, real_ids: Callable[[str], dict[str, str]]
) -> None:
    statuses = run_all(
        (
            label(op),
            lambda op=op: fuzz(
                op, GenerationMode.POSITIVE, {}, real_ids(op.path), examples=AUTH_EXAMPLES
            ),
        )
        for op in operations(api_schema)
    )

    assert set(statuses) == OPERATIONS
    assert {name for name, seen in statuses.items() if 401 not in seen} == set()


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ANALYST])
def test_a_role_that_may_not_call_an_operation_gets_a_documented_403(
    api_schema: Any,
    tokens: dict[Role, str],
    real_ids: Callable[[str], dict[str, str]],
    role: Role,
) -> None:
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    statuses = run_all(
        (
            label(op),
            lambda op=op: fuzz(
                op, GenerationMode.POSITIVE, headers, real_ids(op.path), examples=AUTH_EXAMPLES
            ),
        )
        for op in operations(api_schema)
    )

    forbidden = {name for name, seen in statuses.items() if seen == {403}}
    assert forbidden == REFUSED[role]


def test_requests_that_succeed_are_answered_as_documented(
    app: FastAPI,
    api_schema: Any,
    tokens: dict[Role, str],
    engine: Engine,
    namespace: str,
    harness: ReviewHarness,
) -> None:
    # Where a rule outside the schema stands (a known goal type, the version and digest
    # of an escalation, an assignee who is a user, dead letters that exist), generated
    # requests are refused; these succeed, and their answers are checked alike.
    by_label = {label(op): op for op in operations(api_schema)}
    with engine.begin() as conn:
        auth_store.add_user(conn, name="rob", password="a long enough secret", role=Role.REVIEWER)
    commented, assigned, decided = (harness.escalate(f"g-good-{n}") for n in range(3))
    letters = [index_dead_letter(engine, namespace, n) for n in range(1, 4)]
    requests: list[tuple[str, dict[str, Any], Any]] = [
        ("POST /api/v1/goals", {}, {"type": "test.reviewed", "input": {"text": "hi"}}),
        (
            "POST /api/v1/escalations/{escalation_id}/comments",
            {"escalation_id": commented.id},
            {"text": "looks fine", "version": commented.version},
        ),
        (
            "POST /api/v1/escalations/{escalation_id}/assign",
            {"escalation_id": assigned.id},
            {"assignee": "rob"},
        ),
        (
            "POST /api/v1/escalations/{escalation_id}/decision",
            {"escalation_id": decided.id},
            {"action": "approve", "version": decided.version, "digest": decided.digest},
        ),
        ("POST /api/v1/dlq/replays", {}, {"ids": letters[:1], "dry_run": True}),
        ("POST /api/v1/dlq/replays", {}, {"ids": letters[:1], "request_id": "good"}),
        ("POST /api/v1/dlq/replays", {}, {"ids": letters[:1], "request_id": "good"}),
        ("POST /api/v1/dlq/resolve", {}, {"ids": letters[1:2], "reason": "fixed"}),
        ("POST /api/v1/dlq/discard", {}, {"filter": "status=pending", "reason": "moot"}),
    ]
    headers = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    answered = []
    for name, path, body in requests:
        case = by_label[name].Case(
            path_parameters=path or None, body=body, media_type="application/json"
        )
        response = case.call(headers=headers)
        answered.append((name, response.status_code))
        assert response.status_code < 300, (name, response.text)
        case.validate_response(response, checks=CHECKS)
    app.state.waypost.replays.wait("good", timeout=30)

    # The replay was made (202), then found made before (200).
    assert [status for name, status in answered if name == "POST /api/v1/dlq/replays"] == [
        200,
        202,
        200,
    ]
