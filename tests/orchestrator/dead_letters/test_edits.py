"""Edits before a replay: RFC 7386 merge patches (the RFC's own examples) and whole
replacements, and how a replay request stores them."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.dead_letters.edits import Edit, merge_patch
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
