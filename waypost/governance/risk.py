"""Risk levels (pure): how risky the policies say an action is, and whether its approval
needs two different reviewers.

A policy gives actions a level with ``risk`` (``{refund: high, "*": low}``: an action's
own entry, else the ``"*"`` entry). Like every restriction, levels add up across the
applicable policies: an action has the highest level any of them gives it, ``low`` when
none does. ``four_eyes_from: high`` in any applicable policy makes an approval of an
action at ``high`` or above need ``FOUR_EYES`` different reviewers. The engine
(``engine.check``) adds the rest: a ``critical`` action always waits for a person, even
when an allow list allows it and no approval rule names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from waypost.governance.model import FOUR_EYES, Policy, RiskLevel, RuleRef, risk_rank


@dataclass(frozen=True, slots=True)
class Risk:
    """An action's level, the entry that gives it (None: no policy gives one, so
    ``low``), and the ``four_eyes_from`` rule that asks for two reviewers, if any."""

    level: RiskLevel = "low"
    rule: RuleRef | None = None
    four_eyes: RuleRef | None = None

    @property
    def approvals(self) -> int:
        """How many different reviewers an approval of the action needs."""
        return FOUR_EYES if self.four_eyes is not None else 1

    @property
    def critical(self) -> bool:
        """True when the action always waits for a person."""
        return self.level == "critical"


def assess(ordered: Sequence[Policy], action: str) -> Risk:
    """The risk of ``action`` under the applicable policies (most specific first, which
    decides whose entry is cited when several give the highest level)."""
    level: RiskLevel = "low"
    rule: RuleRef | None = None
    for policy in ordered:
        found = policy.risk_of(action)
        if found is not None and (rule is None or risk_rank(found[0]) > risk_rank(level)):
            level, rule = found[0], policy.ref(found[1])
    four_eyes = next(
        (
            policy.ref("four_eyes_from")
            for policy in ordered
            if policy.four_eyes_from is not None
            and risk_rank(level) >= risk_rank(policy.four_eyes_from)
        ),
        None,
    )
    return Risk(level, rule, four_eyes)


def reviewers_needed(risk: Risk) -> str:
    """What an approval reason adds under four eyes (empty otherwise)."""
    if risk.four_eyes is None:
        return ""
    return (
        f"; {risk.approvals} different reviewers must approve it (risk {risk.level}, "
        f"four eyes under {risk.four_eyes})"
    )
