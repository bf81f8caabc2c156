"""Errors of event cascades.

WaypostError (waypost.errors)
└── EventError             the consumer loop dead-letters the event at once
    └── CascadeError       a triggering event that starts no workflow
        ├── CascadeDepthExceeded  the event comes from a workflow at the depth limit
        │                         (a cycle of triggers, or a chain too long)
        └── CascadeRefused        its depth header is unreadable, its data is not
                                  JSON, or a trigger's input mapping or the playbook's
                                  input_schema refuses what it makes

Each is raised while deciding, before anything is written, so the event starts none of
its workflows and is dead-lettered to ``<topic>.dlq`` with the message (which names the
playbook, the trigger and what to change); replaying it after the fix starts them.
"""

from __future__ import annotations

from waypost.errors import EventError


class CascadeError(EventError):
    """A triggering event that starts no workflow."""


class CascadeDepthExceeded(CascadeError):
    """The event's cascade depth is at the configured limit."""


class CascadeRefused(CascadeError):
    """The event cannot be made into the goal a trigger describes."""
