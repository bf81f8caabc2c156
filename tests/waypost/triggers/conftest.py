"""Fixtures of the trigger tests: real mosquitto and nats-server brokers."""

from tests.waypost.triggers.brokers import mosquitto, nats_server

__all__ = ["mosquitto", "nats_server"]
