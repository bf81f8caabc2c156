"""Event cascades: a playbook's ``triggers:`` start its workflows from other events.

``events.py`` reads a CloudEvent from a record (binary or structured mode) and its
cascade depth; ``matching.py`` decides, purely, which goals an event starts (filter,
input mapping, the depth limit, one goal id per playbook and event); ``outgoing.py``
makes a triggered workflow's events carry its depth; ``consumer.py`` reads the trigger
topics and submits the goals through ``orchestrator.goals``; ``service.py`` wires it
into the orchestrator process. docs/triggers.md ("Event cascades") describes the whole.
"""
