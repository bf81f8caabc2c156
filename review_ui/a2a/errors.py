"""Why an A2A request cannot be served. Each is an ``a2a-sdk`` error, which the SDK's
dispatcher answers as a JSON-RPC error with its code and this message; the SDK picks
the code by the error's exact class, so this package raises the SDK's classes
themselves, imported from here, rather than subclasses of them.

    A2AError (a2a.utils.errors)
    ├── InvalidParamsError (-32602)         the message cannot become a goal: no data
    │                                       part, no or unknown skill, input breaking
    │                                       the goal type's schema, a reused message id
    ├── TaskNotFoundError (-32001)          no workflow has this task id
    ├── TaskNotCancelableError (-32002)     the workflow has finished
    ├── UnsupportedOperationError (-32004)  tasks/list; subscribing to a finished task
    ├── PushNotificationNotSupportedError   push notification configs
    └── ExtendedAgentCardNotConfiguredError the extended card (the public one is all)

Failing to authenticate or to hold the role a method needs is not a JSON-RPC error:
the HTTP layer answers 401 or 403 before the dispatcher sees the request.
"""

from __future__ import annotations

from a2a.utils.errors import (
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

__all__ = [
    "ExtendedAgentCardNotConfiguredError",
    "InvalidParamsError",
    "PushNotificationNotSupportedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "UnsupportedOperationError",
]
