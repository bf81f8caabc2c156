"""How far a reviewer's edit moved an agent's output (pure)."""

from __future__ import annotations

import pytest

from orchestrator.quality.distance import MAX_CHARS, canonical, edit_distance


def test_the_same_output_is_no_distance_whatever_its_key_order() -> None:
    assert edit_distance({"a": 1, "b": "x"}, {"b": "x", "a": 1}) == 0.0
    assert canonical({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_a_small_edit_is_near_zero_and_a_rewrite_near_one() -> None:
    proposed = {"text": "Dear customer, your refund of 40 EUR is on its way."}
    touched = {"text": "Dear customer, your refund of 45 EUR is on its way."}
    rewritten = {"summary": 7}

    small = edit_distance(proposed, touched)
    large = edit_distance(proposed, rewritten)

    assert 0.0 < small < 0.1
    assert 0.7 < large <= 1.0


def test_a_local_edit_of_a_long_output_is_measured_around_the_change() -> None:
    long = "word " * 4000
    edited = long[:9000] + "WORDS " + long[9000:]

    assert 0 < edit_distance({"t": long}, {"t": edited}) < 0.001


def test_a_long_changed_middle_is_estimated_from_its_beginning() -> None:
    before = {"t": "a" * 100 + "x" * (MAX_CHARS * 3) + "b" * 100}
    after = {"t": "a" * 100 + "y" * (MAX_CHARS * 3) + "b" * 100}

    # Nothing of the middle matches: the distance is the middle's share of the text.
    assert edit_distance(before, after) == pytest.approx(2400 / 2610, abs=0.001)
