"""The agents of the ``support.ticket`` playbook, hosted together.

``waypost agent run agents.support`` finds the three ``Agent`` objects below among this
module's attributes and serves the ``triage``, ``knowledge`` and ``reply`` capabilities
from one worker.
"""

from __future__ import annotations

from agents.knowledge import knowledge
from agents.reply import reply
from agents.triage import triage

__all__ = ["knowledge", "reply", "triage"]
