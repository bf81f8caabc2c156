"""Login throttling decisions (pure, no fixtures): when a name or client must wait, when
it locks, when the lock ends, and what a success forgets. Time is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from review_ui.auth import throttle
from review_ui.auth.throttle import NO_WAIT, Counter, Scope, ThrottlePolicy
from waypost.settings import HttpSettings

T0 = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
POLICY = ThrottlePolicy(
    delay_after=3,
    lock_after=6,
    window=timedelta(minutes=15),
    lock_for=timedelta(minutes=10),
    max_delay=timedelta(seconds=4),
)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def fail(counter: Counter, at: datetime, policy: ThrottlePolicy = POLICY) -> throttle.Failed:
    """One attempt at ``at``, counted first and then settled as a failure."""
    return throttle.failed(throttle.attempted(counter, at, policy), at, at, policy)


def failures(times: list[datetime], scope: Scope = Scope.NAME) -> Counter:
    counter = Counter(scope, "rita")
    for at in times:
        counter = fail(counter, at).counter
    return counter


def test_attempts_below_the_delay_threshold_never_wait() -> None:
    counter = failures([T0, T0 + s(0.1)])

    assert throttle.wait(counter, T0 + s(0.1), POLICY) == NO_WAIT
    assert throttle.wait(Counter(Scope.NAME, "new"), T0, POLICY) == NO_WAIT


def test_from_the_threshold_on_the_wait_doubles_from_one_second_up_to_the_cap() -> None:
    counter = Counter(Scope.NAME, "rita")
    waits = []
    at = T0
    for _ in range(6 - 1):  # up to one failure short of the lock
        counter = fail(counter, at).counter
        waits.append(throttle.wait(counter, at, POLICY))
        at += throttle.wait(counter, at, POLICY)  # the caller waits exactly as long as told

    assert waits == [NO_WAIT, NO_WAIT, s(1), s(2), s(4)]
    assert not counter.locked(at)


def test_the_wait_is_counted_from_the_last_failure() -> None:
    counter = failures([T0, T0 + s(1), T0 + s(2)])

    assert throttle.wait(counter, T0 + s(2.25), POLICY) == s(0.75)
    assert throttle.wait(counter, T0 + s(3), POLICY) == NO_WAIT


def test_the_cap_holds_however_many_failures() -> None:
    policy = ThrottlePolicy(1, 1000, timedelta(hours=1), timedelta(hours=1), s(30))
    counter = Counter(Scope.CLIENT, "203.0.113.7")
    for n in range(200):
        counter = fail(counter, T0 + s(n), policy).counter

    assert throttle.wait(counter, T0 + s(199), policy) == s(30)
    assert len(counter.failures) <= policy.kept  # the row does not grow without end


def test_the_failure_that_reaches_the_lock_threshold_locks_for_the_lock_duration() -> None:
    counter = failures([T0 + s(n) for n in range(5)])

    outcome = fail(counter, T0 + s(10))

    assert outcome.locked
    assert outcome.counter.locked_at == T0 + s(10)
    assert outcome.counter.locked_until == T0 + s(10) + timedelta(minutes=10)
    assert throttle.wait(outcome.counter, T0 + s(70), POLICY) == timedelta(minutes=9)


def test_a_lock_ends_by_itself_and_the_next_failure_in_the_window_locks_again() -> None:
    locked = fail(failures([T0 + s(n) for n in range(5)]), T0 + s(5)).counter
    ended = T0 + s(5) + timedelta(minutes=10)

    assert throttle.wait(locked, ended - s(1), POLICY) == s(1)
    assert throttle.wait(locked, ended, POLICY) == NO_WAIT
    # Its failures are still within the 15 minute window: one more and it locks again.
    again = fail(locked, ended + s(1))
    assert again.locked
    assert again.counter.locked_until == ended + s(1) + timedelta(minutes=10)


def test_failures_older_than_the_window_no_longer_count() -> None:
    counter = failures([T0 + s(n) for n in range(5)])
    later = T0 + timedelta(minutes=15, seconds=5)

    assert throttle.wait(counter, later, POLICY) == NO_WAIT
    assert counter.idle(later, POLICY)
    assert not fail(counter, later).locked  # one failure in the window, not six


def test_a_failure_while_locked_does_not_extend_the_lock() -> None:
    locked = fail(failures([T0 + s(n) for n in range(5)]), T0 + s(5)).counter

    again = throttle.failed(locked, T0 + s(30), T0 + s(30), POLICY)

    assert not again.locked
    assert again.counter.locked_until == locked.locked_until


def test_an_attempt_counts_before_it_settles_so_a_burst_cannot_pass_the_threshold() -> None:
    counter = failures([T0, T0])
    counter = throttle.attempted(counter, T0 + s(1), POLICY)  # the third, being checked

    # A concurrent fourth attempt must wait, although the third has not failed yet.
    assert throttle.wait(counter, T0 + s(1), POLICY) == s(1)


def test_settling_a_counted_attempt_as_failed_does_not_count_it_twice() -> None:
    counter = throttle.attempted(Counter(Scope.NAME, "rita"), T0, POLICY)

    settled = throttle.failed(counter, T0, T0 + s(0.2), POLICY).counter

    assert settled.failures == (T0,)


def test_a_failure_counted_nowhere_before_is_added() -> None:
    # A bad API token is not admitted first; a name reset meanwhile lost its attempt.
    settled = throttle.failed(Counter(Scope.CLIENT, "a"), T0, T0, POLICY).counter

    assert settled.failures == (T0,)


def test_a_success_forgets_a_names_failures() -> None:
    counter = throttle.attempted(failures([T0, T0, T0]), T0 + s(5), POLICY)

    after = throttle.succeeded(counter, T0 + s(5))

    assert after == Counter(Scope.NAME, "rita")
    assert throttle.wait(after, T0 + s(5), POLICY) == NO_WAIT


def test_a_success_only_takes_its_own_attempt_back_from_a_client() -> None:
    counter = failures([T0, T0 + s(1)], scope=Scope.CLIENT)
    counter = throttle.attempted(counter, T0 + s(2), POLICY)

    after = throttle.succeeded(counter, T0 + s(2))

    assert after.failures == (T0, T0 + s(1))


def test_with_the_lock_threshold_first_locked_counters_still_space_attempts() -> None:
    policy = ThrottlePolicy(10, 3, timedelta(minutes=15), s(5), s(60))
    counter = Counter(Scope.NAME, "rita")
    for n in range(2):
        counter = fail(counter, T0 + s(n), policy).counter
    assert throttle.wait(counter, T0 + s(2), policy) == NO_WAIT
    counter = throttle.attempted(counter, T0 + s(2), policy)

    # Three attempts, the last still being checked: a fourth waits (no burst).
    assert throttle.wait(counter, T0 + s(2), policy) == s(1)


def test_lifting_forgets_the_lock_and_the_failures() -> None:
    locked = fail(failures([T0 + s(n) for n in range(5)]), T0 + s(5)).counter

    lifted = throttle.lifted(locked)

    assert throttle.wait(lifted, T0 + s(6), POLICY) == NO_WAIT
    assert lifted.idle(T0 + s(6), POLICY)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # the same subscriber
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("testclient", "testclient"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_client_keys(host: str | None, key: str) -> None:
    assert throttle.client_key(host) == key


def test_name_keys_are_the_name_as_typed_without_nul() -> None:
    assert throttle.name_key("Rita") == "Rita"
    assert throttle.name_key("ri\x00ta") == "ri\ufffdta"
    assert len(throttle.name_key("x" * 500)) == 200


@pytest.mark.parametrize(
    ("delay", "words", "header"),
    [
        (s(0.2), "in 1 second", "1"),
        (s(40.5), "in 41 seconds", "41"),
        (s(60), "in 1 minute", "60"),
        (s(61), "in 2 minutes", "61"),
        (timedelta(minutes=15), "in 15 minutes", "900"),
    ],
)
def test_waits_in_words_and_retry_after(delay: timedelta, words: str, header: str) -> None:
    assert throttle.in_words(delay) == words
    assert throttle.retry_after(delay) == header


def test_the_policies_come_from_the_settings() -> None:
    settings = HttpSettings(
        throttle_window_s=600,
        throttle_name_delay_after=2,
        throttle_name_lock_after=4,
        throttle_client_delay_after=8,
        throttle_client_lock_after=16,
        throttle_lock_s=120,
        throttle_max_delay_s=30,
    )

    policies = throttle.policies(settings)

    assert policies.of(Scope.NAME) == ThrottlePolicy(2, 4, s(600), s(120), s(30))
    assert policies.of(Scope.CLIENT) == ThrottlePolicy(8, 16, s(600), s(120), s(30))
