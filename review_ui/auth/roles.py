"""Roles and what each may do: the one place permissions are written down.

reviewer  reads workflows and escalations; claims, comments on and decides them
analyst   reads workflows and escalations; searches, replays, resolves and discards
          dead letters; reads policy decisions and the audit log
admin     everything: also assigns escalations, submits goals, cancels, retries and
          resumes workflows, opens and closes circuit breakers, manages users
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's or token's role."""

    REVIEWER = "reviewer"
    ANALYST = "analyst"
    ADMIN = "admin"


READ = frozenset({Role.REVIEWER, Role.ANALYST, Role.ADMIN})
DECIDE = frozenset({Role.REVIEWER, Role.ADMIN})
ASSIGN = frozenset({Role.ADMIN})
SUBMIT_GOALS = frozenset({Role.ADMIN})
MANAGE_USERS = frozenset({Role.ADMIN})
DEAD_LETTERS = frozenset({Role.ANALYST, Role.ADMIN})
OPERATE = frozenset({Role.ADMIN})  # cancel, retry, resume workflows; open/close breakers
GOVERNANCE = frozenset({Role.ANALYST, Role.ADMIN})  # policy decisions, the audit log
