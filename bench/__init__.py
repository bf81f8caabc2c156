"""Benchmarks: each prints Waypost's rate next to the raw Kafka rate on the same broker."""
