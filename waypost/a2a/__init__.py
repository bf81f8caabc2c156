"""The A2A bridge: delegate a capability's tasks to a remote Agent2Agent agent
(``waypost a2a bridge``; docs/a2a.md, "Delegating a step to a remote agent").

A bridge file (``config``) names each bridged capability's remote agent; the worker
(``main``) runs one ordinary Waypost agent per bridge (``bridge``), which sends each
task to the remote agent with the official ``a2a-sdk`` client (``remote``), follows the
remote task (``follow``), remembers it across attempts (``store``) and maps its states
onto a result, a failure or a reviewer's escalation (``states``, pure).
"""

from waypost.a2a.config import Bridge, load_bridges, load_text

__all__ = ["Bridge", "load_bridges", "load_text"]
