"""The scenarios: which child each fault hits, how, and at what point of the run.

A fault strikes when the given share of the run's goals has been accepted, and only
once the previous fault is over (the child restarted, or the freeze or outage ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.chaos.stack import AGENT, PLANNED_PLAYBOOKS, PLAYBOOKS

Action = Literal["kill", "interrupt", "freeze", "outage"]
MODEL = "model"
"""The target of an ``outage``: the harness's scripted model, not a Waypost process."""
PAIR = "chaos.pair"
PLANNED = "chaos.planned"


@dataclass(frozen=True)
class Fault:
    """One fault: ``action`` on the child ``target`` once ``at`` of the goals are in."""

    target: str
    action: Action
    at: float
    hold_s: float = 0.0
    """For ``freeze``: how long the child stays stopped; for ``outage``: how long the
    scripted model answers 503."""

    def label(self) -> str:
        """How the report names it."""
        what = {"kill": "kill -9", "interrupt": "SIGINT", "freeze": "SIGSTOP", "outage": "503"}[
            self.action
        ]
        held = f" {self.hold_s:g}s" if self.action in ("freeze", "outage") else ""
        return f"{what} {self.target}{held} at {self.at:.0%}"


@dataclass(frozen=True)
class Scenario:
    """A named fault plan and the run sizes it uses by default."""

    name: str
    help: str
    faults: tuple[Fault, ...]
    sizes: tuple[int, ...] = (3000,)
    runs: int = 1
    goal_type: str = PAIR
    """The goal type the load submits."""
    playbooks: tuple[Path, ...] = (PLAYBOOKS,)
    """The playbook directories `waypost up` loads."""
    model: bool = False
    """Serve the scripted model and point the orchestrator's LLM planner at it."""


def scenarios(freeze_s: float, outage_s: float = 5.0) -> dict[str, Scenario]:
    """Every scenario by name, in the order `python -m bench.chaos` runs them."""
    plan = [
        Scenario(
            "agent-kill",
            "kill -9 the chaos agent process three times (at 25%, 50% and 75% of the "
            "goals accepted); the supervisor restarts it each time.",
            tuple(Fault(AGENT, "kill", at) for at in (0.25, 0.5, 0.75)),
        ),
        Scenario(
            "orchestrator-kill",
            "kill -9 the orchestrator while goals are still arriving (15%), in the middle "
            "(50%) and near the end (95%).",
            tuple(Fault("orchestrator", "kill", at) for at in (0.15, 0.5, 0.95)),
        ),
        Scenario(
            "broker-restart",
            "kill -9 the embedded Tansu broker at 50%; the supervisor restarts it EMPTY "
            "(memory storage). At 1,000 and 3,000 workflows, 10 runs each by default: "
            "every run must end with no stuck workflow.",
            (Fault("broker", "kill", 0.5),),
            sizes=(1000, 3000),
            runs=10,
        ),
        Scenario(
            "postgres-restart",
            "restart PostgreSQL fast (SIGINT to the postmaster) at 30%, then kill -9 the "
            "postmaster at 70%; the supervisor restarts it. No Waypost process "
            "(orchestrator, agents, indexer, http) may exit.",
            (Fault("postgres", "interrupt", 0.3), Fault("postgres", "kill", 0.7)),
        ),
        Scenario(
            "agent-freeze",
            f"SIGSTOP the chaos agent process at 40% for {freeze_s:g} s, then SIGCONT.",
            (Fault(AGENT, "freeze", 0.4, hold_s=freeze_s),),
        ),
        Scenario(
            "planner-kill",
            "chaos.planned goals, each planned by the LLM planner from a scripted model "
            "that answers in 0.2-0.5 s: kill -9 the orchestrator while it asks for a plan "
            f"(30% and 70%), and the model answers 503 for {outage_s:g} s at 50%. Killed "
            "claims run out (10 s lease) and are planned again; 500 workflows by default "
            "(one planning thread plans about 3 a second).",
            (
                Fault("orchestrator", "kill", 0.3),
                Fault(MODEL, "outage", 0.5, hold_s=outage_s),
                Fault("orchestrator", "kill", 0.7),
            ),
            sizes=(500,),
            goal_type=PLANNED,
            playbooks=(PLAYBOOKS, PLANNED_PLAYBOOKS),
            model=True,
        ),
    ]
    return {s.name: s for s in plan}
