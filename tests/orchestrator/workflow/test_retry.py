"""Retry delays: capped exponential backoff with equal jitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.workflow.retry import RetryPolicy


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 32.0), (7, 60.0), (50, 60.0)],
)
def test_the_ceiling_doubles_per_attempt_up_to_the_maximum(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy()

    assert policy.delay(attempt, lambda: 0.0) == pytest.approx(ceiling / 2)
    assert policy.delay(attempt, lambda: 1.0) == pytest.approx(ceiling)


def test_jitter_spreads_delays_between_half_and_all_of_the_ceiling() -> None:
    policy = RetryPolicy(initial_s=4.0, max_s=100.0)

    assert policy.delay(1, lambda: 0.0) == 2.0
    assert policy.delay(1, lambda: 0.5) == 3.0
    assert policy.delay(1, lambda: 0.999) == pytest.approx(3.998)


def test_a_custom_policy_uses_its_own_bounds() -> None:
    policy = RetryPolicy(initial_s=0.1, max_s=0.5)

    assert policy.delay(1, lambda: 1.0) == pytest.approx(0.1)
    assert policy.delay(3, lambda: 1.0) == pytest.approx(0.4)
    assert policy.delay(4, lambda: 1.0) == pytest.approx(0.5)


def test_the_random_source_is_asked_once_per_delay() -> None:
    calls: list[None] = []

    def random() -> float:
        calls.append(None)
        return 0.25

    RetryPolicy().delay(2, random)

    assert len(calls) == 1


@given(
    initial=st.floats(min_value=0.001, max_value=100.0),
    maximum=st.floats(min_value=0.001, max_value=1000.0),
    attempt=st.integers(min_value=1, max_value=200),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_delays_stay_within_half_and_all_of_the_capped_ceiling(
    initial: float, maximum: float, attempt: int, draw: float
) -> None:
    policy = RetryPolicy(initial_s=initial, max_s=maximum)
    ceiling = min(maximum, initial * 2.0 ** (attempt - 1))

    delay = policy.delay(attempt, lambda: draw)

    assert ceiling / 2 <= delay <= ceiling
    assert delay <= maximum


@given(
    attempt=st.integers(min_value=1, max_value=30),
    draw=st.floats(min_value=0.0, max_value=1.0),
)
def test_later_attempts_never_wait_less_for_the_same_draw(attempt: int, draw: float) -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=60.0)

    assert policy.delay(attempt + 1, lambda: draw) >= policy.delay(attempt, lambda: draw)
