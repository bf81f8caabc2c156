"""Which incarnation of a topic a consumer reads: its topic id.

A topic deleted and created again under the same name (on a Kafka cluster by an
operator, or by Waypost after an embedded broker restarted empty) starts its offsets
from zero, while a running consumer still holds positions of the old log. Committing
one of those into the new topic strands the group: on the embedded broker a fetch
beyond the end of a log returns nothing, for good (no OFFSET_OUT_OF_RANGE), and its
watermarks cannot tell (they are wrong after batched produces). The topic id (KIP-516)
changes with every creation, on Kafka and on Tansu alike, so a consumer that remembers
the id it read a record under can refuse to commit that record into another
incarnation and read the new one from its beginning instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# topic name -> its topic id, or None when the topic does not exist (now).
Describe = Callable[[list[str]], dict[str, str | None]]


@dataclass
class TopicIdentity:
    """The topic ids a consumer has seen, and the topics it must read again.

    ``describe`` asks the broker for the current ids (raising BusError when it cannot
    be reached); ``verify`` compares them with the ids known so far, and a topic whose id
    changed is remembered as *recreated* until ``take_recreated`` hands it to the
    consumer, which then rewinds its partitions of it.
    """

    describe: Describe
    _known: dict[str, str] = field(default_factory=dict)
    _recreated: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def known(self, topic: str) -> str | None:
        """The id this consumer reads ``topic`` under (None: not learnt yet)."""
        with self._lock:
            return self._known.get(topic)

    def learn(self, topics: Iterable[str]) -> None:
        """Look up the ids of topics not seen before (raises BusError if unreachable)."""
        with self._lock:
            missing = sorted(set(topics) - self._known.keys())
        if missing:
            self.verify(missing)

    def verify(self, topics: Iterable[str]) -> dict[str, str | None]:
        """The current id of each topic (None: it does not exist now); a topic whose id
        differs from the one known is marked recreated. Raises BusError if unreachable."""
        names = sorted(set(topics))
        if not names:
            return {}
        current = self.describe(names)
        with self._lock:
            for name in names:
                now, before = current.get(name), self._known.get(name)
                if now is None:
                    continue  # gone (a broker restarting empty): judged when it is back
                if before is not None and before != now:
                    log.warning(
                        "topic %s was created again (topic id %s -> %s): reading its new "
                        "log from the beginning; records of the old one are not committed",
                        name,
                        before,
                        now,
                    )
                    self._recreated.add(name)
                self._known[name] = now
        return {name: current.get(name) for name in names}

    def take_recreated(self) -> set[str]:
        """Topics found recreated since the last call (to rewind)."""
        with self._lock:
            taken, self._recreated = self._recreated, set()
        return taken

    def put_back(self, topics: Iterable[str]) -> None:
        """Topics whose rewind failed; ``take_recreated`` returns them again."""
        with self._lock:
            self._recreated.update(topics)
