"""Agent memory (pgvector): what a capability remembers across tasks.

    memory = AgentMemory(engine, embedder, agent="support")   # the runtime's ctx.memory
    memory.remember("Sam prefers email over phone", kind="semantic", importance=0.8)
    for found in memory.recall("how should I contact Sam?", k=3):
        print(found.score, found.memory.content)
    memory.consolidate()   # merge near-duplicates, forget what is old, unused and trivial

``model`` holds the pure rules (ranking formula, merge planning), ``repository`` all
SQL, ``store`` the ``AgentMemory`` that ties them to an engine and an embedder, and
``tables`` the table that migration 0011 creates.
"""

from waypost.memory.model import (
    KINDS,
    Consolidation,
    Memory,
    MemoryKind,
    MemoryPolicy,
    Merge,
    Recalled,
)
from waypost.memory.store import AgentMemory

__all__ = [
    "KINDS",
    "AgentMemory",
    "Consolidation",
    "Memory",
    "MemoryKind",
    "MemoryPolicy",
    "Merge",
    "Recalled",
]
