"""The orchestrator's planning thread: plans the workflows of ``planner: llm`` goal types.

Each tick claims a few workflows waiting as ``planning`` (``store.claim``: one
orchestrator per workflow, renewed before each model call, running out if its planner
dies), reads the
capability catalogue, and plans each outside any transaction (a model takes seconds).
Then, in one transaction per workflow: the plans asked for are stored with their prompts
and answers, an audit row per plan, the workflow is locked and told ``PlanReady`` or
``PlanFailed`` through the applier (so a plan starts, or opens its review, exactly as
any input changes a workflow; a workflow cancelled meanwhile ignores it), and the claim
ends. A model that did not answer leaves the workflow planning; it is tried again after
a backoff.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from orchestrator.planning import catalogue, store
from orchestrator.planning.planner import Outcome, PlanAttempt, Planner
from orchestrator.planning.plans import Catalogue
from orchestrator.planning.store import History
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.service.applier import Applier
from orchestrator.service.observations import NO_OBSERVER, Observation, Observer
from orchestrator.store import audit
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.workflow.messages import Input, PlanFailed, PlanReady
from orchestrator.workflow.state import WorkflowState
from waypost.bus.base import Admin
from waypost.errors import ConfigError
from waypost.events import utcnow
from waypost.governance import Gate, Governor, InvalidPolicies, PolicySet
from waypost.llm import LLMClient, LLMSettings
from waypost.outages import Outages, retry_in_place
from waypost.settings import CommonSettings, OrchestratorSettings
from waypost.topics import Topics

log = logging.getLogger(__name__)
ACTOR = "waypost:planner"  # the actor of the planner's audit rows


@dataclass
class PlanningLoop:
    """Claims workflows to plan, plans them and applies the outcome."""

    engine: Engine
    applier: Applier
    planner: Planner
    playbooks: PlaybookRegistry
    publisher: OutboxPublisher
    admin: Admin
    settings: CommonSettings
    clock: Callable[[], datetime]
    poll_interval_s: float = 0.5
    lease_s: float = 300.0
    max_backoff_s: float = 60.0
    # One workflow per claim: a planner that dies leaves only the workflow it was asking
    # about to wait for its claim to run out. Parallel planning is several loops.
    batch_size: int = 1
    metrics: Observer = NO_OBSERVER
    outages: Outages = field(default_factory=Outages)
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def run(self, stop: threading.Event) -> None:
        """Plan until stopped (a database outage is waited out in place)."""
        while not stop.is_set():
            planned = 0
            try:
                _, found = retry_in_place(self.tick, outages=self.outages, stop=stop)
                planned = found or 0
            except Exception:
                log.exception("planning tick failed; retrying")
            if planned < self.batch_size:
                stop.wait(self.poll_interval_s)

    def tick(self) -> int:
        """Plan one batch of claimed workflows; how many were claimed."""
        with self.engine.begin() as conn:
            ids = store.claim(
                conn,
                instance=self.instance,
                now=self.clock(),
                lease_s=self.lease_s,
                limit=self.batch_size,
            )
            if not ids:
                return 0
            states = {i: workflow_rows.get(conn, workflow_id=i) for i in ids}
            known = catalogue.load(conn, self.playbooks)
            spent = store.history(conn, workflow_ids=ids)
        for workflow_id in ids:
            state = states[workflow_id]
            if state is not None:
                self.plan_one(state, known, spent.get(workflow_id, History()))
        return len(ids)

    def plan_one(self, state: WorkflowState, known: Catalogue, spent: History) -> None:
        """Ask for a plan for one claimed workflow and apply what came of it."""
        goal = self.playbooks.get(state.type)
        if goal is None or goal.planning is None:
            outcome = Outcome(
                failure=f"goal type {state.type!r} is no longer planned by the LLM planner"
            )
        else:
            log.info("planning workflow %s (%s)", state.id, state.type)
            outcome = self.planner.plan(
                workflow_id=state.id,
                goal=goal,
                goal_input=state.input,
                catalogue=known,
                asked_before=spent.attempts,
                tokens_before=spent.tokens,
                keep_claim=lambda: self._renew(state.id),
            )
        if outcome.plan is not None:
            # A capability only an agent announced may have no topic yet.
            capabilities = outcome.plan.capabilities
            self.admin.ensure_topics(
                Topics(self.settings.namespace).specs(capabilities, self.settings)
            )
        self._apply(state, outcome)

    def _renew(self, workflow_id: str) -> bool:
        with self.engine.begin() as conn:
            return store.renew(
                conn,
                workflow_id=workflow_id,
                instance=self.instance,
                now=self.clock(),
                lease_s=self.lease_s,
            )

    def _apply(self, state: WorkflowState, outcome: Outcome) -> None:
        now = self.clock()
        applied = None
        delay = 0.0
        with self.engine.begin() as conn:
            store.record(conn, workflow_id=state.id, attempts=outcome.attempts)
            audit.record(conn, entries=[_audit_entry(state.id, a) for a in outcome.attempts])
            if outcome.lost:
                pass  # another orchestrator plans it now
            elif outcome.unavailable is not None:
                delay = store.back_off(
                    conn, workflow_id=state.id, now=now, max_s=self.max_backoff_s
                )
            else:
                event: Input = (
                    PlanReady(outcome.plan, attempts=outcome.attempts[-1].number)
                    if outcome.plan is not None
                    else PlanFailed(outcome.failure or "the planner gave up")
                )
                locked = workflow_rows.lock(conn, ids=[state.id])
                applied = self.applier.apply(
                    conn, states=locked, inputs=[(state.id, event)], now=now
                )
                store.finish(conn, workflow_id=state.id)
        asked = [
            Observation(
                "plan_asked", state.type, detail=a.outcome, tokens=a.input_tokens + a.output_tokens
            )
            for a in outcome.attempts
        ]
        self.metrics.observe([*asked, *(applied.observations if applied else ())])
        if outcome.lost:
            log.info("workflow %s is planned by another orchestrator now", state.id)
            return
        if applied is None:
            log.warning(
                "no plan for workflow %s yet, trying again in %.0f s: %s",
                state.id,
                delay,
                outcome.unavailable,
            )
            return
        if outcome.plan is not None:
            steps = ", ".join(step.name for step in outcome.plan.steps)
            log.info("workflow %s planned: %s", state.id, steps)
        else:
            log.warning("workflow %s could not be planned: %s", state.id, outcome.failure)
        self.publisher.publish(applied.outbox)


def _audit_entry(workflow_id: str, attempt: PlanAttempt) -> AuditEntry:
    """The audit row of one plan asked for (the prompt and answer are in plan_attempts)."""
    return AuditEntry(
        actor=ACTOR,
        action="plan_attempt",
        workflow_id=workflow_id,
        detail={
            "attempt": attempt.number,
            "outcome": attempt.outcome,
            "model": attempt.model,
            "tokens": attempt.input_tokens + attempt.output_tokens,
            "problems": list(attempt.problems),
        },
        at=attempt.at,
    )


def planning_loop(
    settings: OrchestratorSettings,
    *,
    engine: Engine,
    playbooks: PlaybookRegistry,
    applier: Applier,
    publisher: OutboxPublisher,
    admin: Admin,
    metrics: Observer = NO_OBSERVER,
    outages: Outages | None = None,
) -> PlanningLoop | None:
    """The planning thread, or None when no playbook says ``planner: llm``. ConfigError
    (naming the variable) when the model or the policies are not set up right."""
    planned = sorted(p.type for p in playbooks if p.planning is not None)
    if not planned:
        return None
    try:
        llm = LLMClient(LLMSettings.from_env())
    except ConfigError as exc:
        raise ConfigError(
            f"goal type(s) {', '.join(planned)} say planner: llm, so the orchestrator needs "
            f"a model: {exc}"
        ) from None
    if settings.planner_lease_s <= llm.settings.timeout_s:
        raise ConfigError(
            f"WAYPOST_PLANNER_LEASE_S ({settings.planner_lease_s:g}) must be longer than "
            f"WAYPOST_LLM_TIMEOUT_S ({llm.settings.timeout_s:g}): a planner holds a workflow "
            "for one model call at a time"
        )
    governor: Governor | None = None
    if settings.policy_dirs:
        try:
            policies = PolicySet(
                settings.policy_dirs, check_interval_s=settings.policy_check_interval_s
            )
        except InvalidPolicies as exc:
            raise ConfigError(f"WAYPOST_POLICY_DIRS: invalid policies:\n{exc}") from None
        governor = Gate(engine, policies)
    log.info(
        "LLM planner ready for %s: model %s at %s%s",
        ", ".join(planned),
        llm.settings.model,
        llm.settings.base_url,
        ", governed by the policies" if governor is not None else "",
    )
    return PlanningLoop(
        engine=engine,
        applier=applier,
        planner=Planner(llm, clock=utcnow, governor=governor),
        playbooks=playbooks,
        publisher=publisher,
        admin=admin,
        settings=settings,
        clock=utcnow,
        poll_interval_s=settings.planner_poll_interval_s,
        lease_s=settings.planner_lease_s,
        max_backoff_s=settings.planner_max_backoff_s,
        metrics=metrics,
        outages=outages or Outages(),
    )
