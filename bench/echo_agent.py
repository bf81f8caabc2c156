"""The agent the throughput benchmark uses: returns its input."""

from __future__ import annotations

from pydantic import BaseModel

from waypost import agent


class Ping(BaseModel):
    n: int


@agent("bench-echo", version="bench")
def bench_echo(ping: Ping) -> Ping:
    """Echo: the cheapest possible agent, so the benchmark measures the platform."""
    return ping
