"""Edits before a replay: RFC 7386 merge patches (the RFC's own examples), whole
replacements and header edits, and how a replay request stores them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator.dead_letters.edits import (
    MAX_HEADER_EDITS,
    MAX_HEADER_VALUE,
    Edit,
    HeaderEdit,
    edits_json,
    merge_patch,
)
from orchestrator.errors import OrchestratorError, ReplayError


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_a_merge_patch_leaves_the_original_payload_alone() -> None:
    payload = {"input": {"text": "old", "lang": "en"}}

    patched = Edit("merge_patch", {"input": {"text": "new"}}).apply(payload)

    assert patched == {"input": {"text": "new", "lang": "en"}}
    assert payload == {"input": {"text": "old", "lang": "en"}}


def test_a_replacement_is_the_new_payload_whatever_the_old_one_was() -> None:
    assert Edit("replace", [1, 2]).apply({"input": {}}) == [1, 2]
    assert Edit("replace", {"a": 1}).apply(None) == {"a": 1}


@pytest.mark.parametrize(
    "edit", [Edit("replace", {"a": [1]}), Edit("merge_patch", {"a": None}), None]
)
def test_an_edit_reads_back_as_its_request_stored_it(edit: Edit | None) -> None:
    stored = edit.as_json() if edit else None

    assert Edit.from_json(stored) == edit


def test_an_unknown_stored_edit_is_a_replay_error() -> None:
    with pytest.raises(ReplayError, match="unknown edit 'json_patch'") as raised:
        Edit.from_json({"json_patch": []})
    assert isinstance(raised.value, OrchestratorError)


# --- header edits -------------------------------------------------------------------------


def test_a_header_edit_sets_in_place_appends_new_ones_and_removes() -> None:
    headers = (
        ("ce_type", b"waypost.goal.submited"),
        ("x-junk", b"1"),
        ("ce_id", b"g-1"),
        ("ce_type", b"a repeat"),
        ("bin", b"\xff\x00"),
    )
    edit = HeaderEdit.parse(
        {"ce_type": "waypost.goal.submitted", "x-junk": None, "ce_specversion": "1.0"}
    )

    assert edit.apply(headers) == (
        ("ce_type", b"waypost.goal.submitted"),  # where the first one was; the repeat gone
        ("ce_id", b"g-1"),
        ("bin", b"\xff\x00"),  # untouched bytes stay as they were
        ("ce_specversion", b"1.0"),
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, "at least one header"),
        ({f"h{n}": "v" for n in range(MAX_HEADER_EDITS + 1)}, f"at most {MAX_HEADER_EDITS}"),
        ({"": "v"}, "1 to 255 characters"),
        ({"x" * 256: "v"}, "1 to 255 characters"),
        ({"has space": "v"}, "visible ASCII"),
        ({"naïve": "v"}, "visible ASCII"),
        ({"waypost-dlq-reason": None}, "written by the replay itself"),
        ({"waypost-replay-count": "0"}, "written by the replay itself"),
        ({"ce_id": "x" * (MAX_HEADER_VALUE + 1)}, f"at most {MAX_HEADER_VALUE} characters"),
        ({"ce_id": "a\nb"}, "control character"),
        ({"ce_id": "a\x00"}, "control character"),
        ({"ce_id": 7}, "is text"),
    ],
)
def test_a_header_edit_that_is_not_sane_is_refused_with_the_reason(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ReplayError, match=re.escape(problem)):
        HeaderEdit.parse(changes)


def test_both_edits_read_back_as_the_request_stored_them() -> None:
    payload = Edit("merge_patch", {"input": {"text": "x"}})
    headers = HeaderEdit.parse({"ce_type": "waypost.goal.submitted", "x": None})

    stored = edits_json(payload, headers)

    assert stored == {
        "merge_patch": {"input": {"text": "x"}},
        "headers": {"ce_type": "waypost.goal.submitted", "x": None},
    }
    assert (Edit.from_json(stored), HeaderEdit.from_json(stored)) == (payload, headers)
    only_headers = edits_json(None, headers)
    assert (Edit.from_json(only_headers), HeaderEdit.from_json(only_headers)) == (None, headers)
    assert edits_json(None, None) is None
