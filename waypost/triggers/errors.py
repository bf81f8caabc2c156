"""Errors of trigger mappings.

WaypostError (waypost.errors)
└── TriggerError
    └── MappingError     a message cannot be mapped onto a goal (also NonRetryableError:
                         the same message fails again); says which reference and why
"""

from __future__ import annotations

from waypost.errors import NonRetryableError, WaypostError


class TriggerError(WaypostError):
    """Base of trigger errors."""


class MappingError(TriggerError, NonRetryableError):
    """The message does not fit the mapping: a reference names nothing in it, or the
    result is not a goal input (a JSON object). The message says which and why."""
