"""Where the pure engine meets the counters: decide a proposal and record the decision.

``Gate`` does it on PostgreSQL, one transaction per decision, so that a rate limit or a
budget holds exactly across any number of workers. ``MemoryGate`` does the same in
memory, for tests and for a worker without a database (its counters are that process's
only, and its audit trail is the ``decisions`` list).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine

from waypost.governance import repository
from waypost.governance.engine import Policies, count_in_window, usage_notices, utc_day
from waypost.governance.model import (
    ANY,
    BudgetNotice,
    Context,
    PolicyDecision,
    Proposal,
    Spend,
    SpendChange,
)


class PolicySource(Protocol):
    """Hands out the policies in force (``PolicySet``, or a fixed ``Policies``)."""

    def current(self) -> Policies:
        """The policies to decide with now."""
        ...


class Governor(Protocol):
    """What the agent runtime needs from governance."""

    def decide(self, proposal: Proposal) -> PolicyDecision:
        """Decide a proposal, audit the decision and, if allowed, count the action."""
        ...

    def record_usage(
        self, *, agent: str, capability: str, workflow_id: str | None, spend: Spend
    ) -> tuple[BudgetNotice, ...]:
        """Add spend not reserved by a proposal; the budget levels it crossed."""
        ...


class Gate:
    """Decisions on PostgreSQL: lock the agent, read its context, decide, record."""

    def __init__(
        self,
        engine: Engine,
        policies: PolicySource,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock``: the time of decisions; default: the database's clock, which all
        workers share."""
        self._engine = engine
        self._policies = policies
        self._clock = clock

    def decide(self, proposal: Proposal) -> PolicyDecision:
        """Decide ``proposal`` and record it, in one transaction."""
        policies = self._policies.current()
        with self._engine.begin() as connection:
            database_now = repository.lock_agent(connection=connection, agent=proposal.agent)
            now = self._clock() if self._clock is not None else database_now
            day = utc_day(now)
            context = repository.read_context(
                connection=connection,
                proposal=proposal,
                windows=policies.windows(proposal),
                now=now,
                day=day,
            )
            decision = policies.check(proposal, context)
            audit_id = repository.record(
                connection=connection,
                proposal=proposal,
                context=context,
                decision=decision,
                day=day,
            )
        return replace(decision, audit_id=audit_id)

    def record_usage(
        self, *, agent: str, capability: str, workflow_id: str | None, spend: Spend
    ) -> tuple[BudgetNotice, ...]:
        """Add spend to the agent's budgets (under its lock, so a level is crossed once)."""
        policies = self._policies.current()
        with self._engine.begin() as connection:
            database_now = repository.lock_agent(connection=connection, agent=agent)
            now = self._clock() if self._clock is not None else database_now
            change = repository.add_spend(
                connection=connection,
                agent=agent,
                day=utc_day(now),
                workflow_id=workflow_id,
                spend=spend,
                now=now,
            )
        return usage_notices(
            policies.policies,
            agent=agent,
            capability=capability,
            workflow_id=workflow_id,
            today=change.today,
            workflow=change.workflow,
        )

    def prune(self, *, keep: timedelta | None = None) -> int:
        """Forget actions older than the longest rate window (or ``keep``)."""
        longest = timedelta(seconds=self._policies.current().longest_window_s)
        with self._engine.begin() as connection:
            now = (
                self._clock()
                if self._clock is not None
                else repository.database_now(connection=connection)
            )
            return repository.prune_actions(connection=connection, before=now - (keep or longest))


@dataclass
class _Ledger:
    actions: dict[str, list[tuple[str, datetime]]]
    spend: dict[tuple[str, str, str], Spend]


class MemoryGate:
    """The ``Gate`` in memory: the same decisions, counters in dictionaries."""

    def __init__(
        self, policies: PolicySource, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._policies = policies
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._ledger = _Ledger(defaultdict(list), defaultdict(Spend))
        self.decisions: list[tuple[Proposal, PolicyDecision]] = []
        """Every decision, oldest first (the audit trail)."""

    def decide(self, proposal: Proposal) -> PolicyDecision:
        """Decide ``proposal`` and record it."""
        policies = self._policies.current()
        with self._lock:
            now = self._clock()
            day = utc_day(now)
            taken = self._ledger.actions[proposal.agent]
            context = Context(
                now=now,
                recent={
                    window: count_in_window(
                        [at for action, at in taken if window.action in (action, ANY)],
                        now,
                        window.seconds,
                    )
                    for window in policies.windows(proposal)
                },
                spent_today=self._ledger.spend[(proposal.agent, "day", day)],
                spent_in_workflow=self._ledger.spend[
                    (proposal.agent, "workflow", proposal.workflow_id or "")
                ]
                if proposal.workflow_id is not None
                else Spend(),
            )
            decision = replace(policies.check(proposal, context), audit_id=len(self.decisions) + 1)
            if decision.allowed:
                taken.append((proposal.action, now))
                self._add(proposal.agent, day, proposal.workflow_id, proposal.estimate)
            self.decisions.append((proposal, decision))
        return decision

    def record_usage(
        self, *, agent: str, capability: str, workflow_id: str | None, spend: Spend
    ) -> tuple[BudgetNotice, ...]:
        """Add spend to the agent's budgets; the budget levels it crossed."""
        policies = self._policies.current()
        with self._lock:
            day = utc_day(self._clock())
            change = self._add(agent, day, workflow_id, spend)
        return usage_notices(
            policies.policies,
            agent=agent,
            capability=capability,
            workflow_id=workflow_id,
            today=change.today,
            workflow=change.workflow,
        )

    def _add(self, agent: str, day: str, workflow_id: str | None, spend: Spend) -> SpendChange:
        totals = self._ledger.spend
        before_day = totals[(agent, "day", day)]
        totals[(agent, "day", day)] = before_day + spend
        if workflow_id is None:
            return SpendChange((before_day, before_day + spend), (Spend(), Spend()))
        before_workflow = totals[(agent, "workflow", workflow_id)]
        totals[(agent, "workflow", workflow_id)] = before_workflow + spend
        return SpendChange(
            (before_day, before_day + spend), (before_workflow, before_workflow + spend)
        )
