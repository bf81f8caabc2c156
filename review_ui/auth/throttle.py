"""Throttling password guessing and token guessing (pure): when a name or a client
address may try to authenticate again, and when its failures lock it.

Two kinds of counters watch failures (OWASP's "lockout threshold / observation window /
lockout duration"):

- one per *name* typed into the login form, whether an account has that name or not,
  so a counter says nothing about which accounts exist;
- one per *client* address: its failed logins under any name (credential stuffing,
  password spraying) and its API requests with an unknown or revoked token.

A counter keeps the times of its failures within the observation window. From
``delay_after`` failures on, each further attempt must wait after the previous failure:
1 s, twice as long for every further failure, at most ``max_delay``. The failure that
makes ``lock_after`` within the window locks the counter for ``lock_for``: every attempt
is refused, whatever the password, until the lock ends by itself or an admin lifts it.
Failures still in the window when a lock ends still count, so the next failure locks
again at once.

An attempt is counted before its password is checked (``attempted``), so concurrent
attempts see each other and a burst cannot slip past a threshold; the outcome then
settles it: ``failed`` (which may lock) or ``succeeded`` (which forgets a name's
failures, and takes the attempt back from a client's).

Time comes in as ``now``; nothing here reads a clock, a database or a request.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from waypost.settings import HttpSettings

FIRST_DELAY = timedelta(seconds=1)
NO_WAIT = timedelta(0)
# 2**30 s is decades: beyond any max_delay, so more doublings change nothing.
_MAX_DOUBLINGS = 30


class Scope(StrEnum):
    """What a counter counts the failures of."""

    NAME = "name"  # a name typed into the login form
    CLIENT = "client"  # a client address


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """When a counter's attempts wait, when it locks, and for how long."""

    delay_after: int
    lock_after: int
    window: timedelta
    lock_for: timedelta
    max_delay: timedelta

    @property
    def kept(self) -> int:
        """How many of the newest failures a counter needs to keep."""
        return max(self.delay_after, self.lock_after) + _MAX_DOUBLINGS


@dataclass(frozen=True, slots=True)
class Policies:
    """The policy of each scope."""

    name: ThrottlePolicy
    client: ThrottlePolicy

    def of(self, scope: Scope) -> ThrottlePolicy:
        """The policy of ``scope``."""
        return self.name if scope is Scope.NAME else self.client


def policies(settings: HttpSettings) -> Policies:
    """The policies the settings ask for."""
    window = timedelta(seconds=settings.throttle_window_s)
    lock_for = timedelta(seconds=settings.throttle_lock_s)
    max_delay = timedelta(seconds=settings.throttle_max_delay_s)
    return Policies(
        name=ThrottlePolicy(
            settings.throttle_name_delay_after,
            settings.throttle_name_lock_after,
            window,
            lock_for,
            max_delay,
        ),
        client=ThrottlePolicy(
            settings.throttle_client_delay_after,
            settings.throttle_client_lock_after,
            window,
            lock_for,
            max_delay,
        ),
    )


@dataclass(frozen=True, slots=True)
class Counter:
    """The failures of one name or client address, oldest first, and its lock."""

    scope: Scope
    key: str
    failures: tuple[datetime, ...] = ()
    locked_at: datetime | None = None
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        """True while a lock holds."""
        return self.locked_until is not None and now < self.locked_until

    def recent(self, now: datetime, policy: ThrottlePolicy) -> tuple[datetime, ...]:
        """The failures within the observation window."""
        since = now - policy.window
        return tuple(at for at in self.failures if at > since)

    def idle(self, now: datetime, policy: ThrottlePolicy) -> bool:
        """True when the counter holds nothing that still counts (it may be forgotten)."""
        return not self.locked(now) and not self.recent(now, policy)


def wait(counter: Counter, now: datetime, policy: ThrottlePolicy) -> timedelta:
    """How long the next attempt must wait (``NO_WAIT``: it may go now)."""
    if counter.locked(now):
        assert counter.locked_until is not None
        return counter.locked_until - now
    recent = counter.recent(now, policy)
    # Past the lock threshold (a lock that ended, or attempts still being checked), the
    # delay holds even when delay_after is higher: no burst between two locks.
    if not recent or len(recent) < min(policy.delay_after, policy.lock_after):
        return NO_WAIT
    doublings = min(max(0, len(recent) - policy.delay_after), _MAX_DOUBLINGS)
    delay = min(FIRST_DELAY * (1 << doublings), policy.max_delay)
    return max(NO_WAIT, recent[-1] + delay - now)


def attempted(counter: Counter, now: datetime, policy: ThrottlePolicy) -> Counter:
    """The counter with an attempt at ``now`` counted as a failure until it settles."""
    return replace(counter, failures=_kept((*counter.recent(now, policy), now), policy))


@dataclass(frozen=True, slots=True)
class Failed:
    """A counter after a failure, and whether that failure locked it."""

    counter: Counter
    locked: bool


def failed(counter: Counter, attempt_at: datetime, now: datetime, policy: ThrottlePolicy) -> Failed:
    """Settle an attempt (made at ``attempt_at``) as a failure; it may lock the counter."""
    failures = counter.failures
    if attempt_at not in failures:  # not counted before (a token), or forgotten meanwhile
        failures = _kept(tuple(sorted((*failures, attempt_at))), policy)
    settled = replace(counter, failures=failures)
    if settled.locked(now) or len(settled.recent(now, policy)) < policy.lock_after:
        return Failed(settled, locked=False)
    locked = replace(settled, locked_at=now, locked_until=now + policy.lock_for)
    return Failed(locked, locked=True)


def succeeded(counter: Counter, attempt_at: datetime) -> Counter:
    """Settle an attempt as a success: a name starts afresh (the right password ends
    its throttling); a client only gets this attempt back, its other failures stand."""
    if counter.scope is Scope.NAME:
        return Counter(counter.scope, counter.key)
    failures = list(counter.failures)
    if attempt_at in failures:
        failures.remove(attempt_at)
    return replace(counter, failures=tuple(failures))


def lifted(counter: Counter) -> Counter:
    """The counter after an admin lifted its lock: no lock, no failures."""
    return Counter(counter.scope, counter.key)


def client_key(host: str | None) -> str:
    """The counter key of a client address: an IPv6 address counts as its /64 network
    (one subscriber usually has a whole /64), anything else as it is."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def name_key(name: str) -> str:
    """The counter key of a typed name: as the login compares it (exactly), without
    the NUL character PostgreSQL cannot store, at most 200 characters."""
    return name.replace("\x00", "\ufffd")[:200]


def retry_after(delay: timedelta) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(delay.total_seconds())))


def in_words(delay: timedelta) -> str:
    """``in 40 seconds``, ``in 1 minute``, ``in 15 minutes``, rounded up."""
    seconds = max(1, math.ceil(delay.total_seconds()))
    if seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"


def _kept(failures: tuple[datetime, ...], policy: ThrottlePolicy) -> tuple[datetime, ...]:
    return failures[-policy.kept :]
