"""Errors of the Waypost kernel.

WaypostError
├── ConfigError            a setting is missing or invalid; the message names it
│   └── StackNotFound      no endpoint configured and no `waypost up` stack running
├── StackError             the embedded broker or PostgreSQL could not start
├── PluginError            an extension point's entry point cannot be loaded (a broken
│                          installation; waypost.plugins)
├── EventError             a message is not a valid Waypost event (it is dead-lettered)
│   ├── UndecodableEvent   headers, bytes or JSON cannot be read at all
│   ├── InvalidEvent       readable, but it breaks its event type's JSON Schema
│   └── UnexpectedEvent    valid, but not a type this consumer handles
├── BusError               the broker refused or lost something
│   ├── PublishError       a message was not acknowledged
│   └── TopicError         topics could not be listed or created
└── AgentError
    ├── AgentDefinitionError   an @agent function is declared wrongly
    └── NonRetryableError      raised by a handler: retrying cannot help
"""

from __future__ import annotations


class WaypostError(Exception):
    """Base of every error Waypost raises on purpose."""


class ConfigError(WaypostError):
    """A setting is missing or invalid."""


class StackNotFound(ConfigError):
    """Neither an explicit endpoint nor a running `waypost up` stack was found."""


class StackError(WaypostError):
    """An embedded service could not be started or stopped."""


class PluginError(WaypostError):
    """An entry point of Waypost's extension points cannot be loaded or is not what its
    group expects (a broken installation)."""


class EventError(WaypostError):
    """A consumed message is not a valid Waypost event."""

    def __init__(self, message: str, *, event_type: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type


class UndecodableEvent(EventError):
    """The message's headers, bytes or JSON cannot be read."""


class InvalidEvent(EventError):
    """The message decodes but does not match its event type's schema."""


class UnexpectedEvent(EventError):
    """A valid event of a type this consumer does not handle (it is dead-lettered)."""


class BusError(WaypostError):
    """The broker refused or lost something."""


class PublishError(BusError):
    """One or more messages were not acknowledged by the broker."""


class TopicError(BusError):
    """Topics could not be listed or created."""


class AgentError(WaypostError):
    """Base of agent SDK errors."""


class AgentDefinitionError(AgentError):
    """An @agent function is declared in a way the runtime cannot run."""


class NonRetryableError(AgentError):
    """Raised by an agent handler when retrying the same input cannot succeed."""
