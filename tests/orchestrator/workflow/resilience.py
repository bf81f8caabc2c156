"""Playbooks and a run with circuit breakers, for the fallback and human-fallback tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from orchestrator.workflow.breaker import BreakerPolicy, Circuit, CircuitBook, CircuitState
from orchestrator.workflow.machine import Environment
from tests.orchestrator.workflow.harness import T0, Run, load_playbook

POLICY = BreakerPolicy(failure_threshold=3, window_s=60, open_s=30)

# `fetch` runs on `primary` (2 attempts), then on `backup` (2 attempts); `use` after it.
FALLING_BACK = """\
type: resilient
steps:
  - name: fetch
    capability: primary
    timeout: 10s
    retries: 1
    backoff: {initial: 1s, max: 1s}
    fallback: {capability: backup, retries: 1}
    input: {text: $goal.text}
  - name: use
    capability: user
    depends_on: [fetch]
    input: {fetched: $steps.fetch.output.text}
"""

# No fallback, and a person supplies the output when every attempt failed.
ESCALATING = """\
type: escalating
steps:
  - name: fetch
    capability: primary
    timeout: 10s
    retries: 1
    backoff: {initial: 1s, max: 1s}
    on_failure: escalate
    review: {group: rescuers, priority: 1, sla: 1h}
    output_schema:
      type: object
      required: [text]
      properties: {text: {type: string}}
    input: {text: $goal.text}
  - name: use
    capability: user
    depends_on: [fetch]
    input: {fetched: $steps.fetch.output.text}
"""


@dataclass
class BreakerRun(Run):
    """A run whose decisions see (and change) ``book``, as one batch of the applier's."""

    book: CircuitBook = field(default_factory=lambda: CircuitBook(POLICY))

    def env(self) -> Environment:
        return replace(super().env(), circuits=self.book)


def run_of(text: str, *circuits: Circuit) -> BreakerRun:
    """A fresh, unplanned run of a playbook, with these circuits stored."""
    return BreakerRun(load_playbook(text), {"text": "hello"}, book=CircuitBook.of(POLICY, circuits))


def open_circuit(capability: str, until_s: float = 30) -> Circuit:
    """A circuit that opened at T0 and refuses until T0 + ``until_s``."""
    return Circuit(
        capability,
        CircuitState.OPEN,
        failures=(T0, T0, T0),
        opened_at=T0,
        open_until=T0 + timedelta(seconds=until_s),
        last_error="RuntimeError: down",
        updated_at=T0,
    )
