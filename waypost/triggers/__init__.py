"""Trigger gateways' shared parts: turning a foreign message (a webhook body, an MQTT or
NATS message, a scheduled slot, another workflow's event) into a goal (docs/triggers.md).
"""
