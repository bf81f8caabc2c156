"""The pure mapping of remote A2A task states onto a Waypost attempt."""

from __future__ import annotations

import pytest

from waypost.a2a.states import (
    Completed,
    Failed,
    InputRequired,
    RemoteTask,
    continues,
    input_params,
    output_of,
    settle,
    whole,
)


def _task(state: str, **fields: object) -> RemoteTask:
    return RemoteTask(id="r-1", context_id="c-1", state=state, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["submitted", "working", "unspecified"])
def test_a_running_task_is_followed_on(state: str) -> None:
    assert settle(_task(state), agent="desk") is None


def test_completed_gives_the_artifacts_data_as_the_output() -> None:
    settled = settle(_task("completed", data=({"total": 12.0, "ok": True},)), agent="desk")

    assert settled == Completed({"total": 12, "ok": True})


@pytest.mark.parametrize(
    ("state", "retryable", "words"),
    [
        ("failed", True, "remote agent 'desk' failed task r-1: disk full"),
        ("rejected", False, "remote agent 'desk' rejected task r-1: disk full"),
        ("canceled", False, "remote task r-1 of agent 'desk' was cancelled: disk full"),
        ("auth-required", False, "wants authentication for task r-1: disk full; set the"),
    ],
)
def test_unfinished_ends_fail_retryable_only_when_another_attempt_may_help(
    state: str, retryable: bool, words: str
) -> None:
    settled = settle(_task(state, message="disk full"), agent="desk")

    assert isinstance(settled, Failed)
    assert settled.retryable is retryable
    assert words in settled.reason


def test_input_required_carries_the_question_and_binds_the_approval_to_it() -> None:
    settled = settle(_task("input-required", message="May I refund 12 EUR?"), agent="desk")

    assert settled == InputRequired("May I refund 12 EUR?", "r-1")
    assert input_params(settled) == {"remote_task_id": "r-1", "question": "May I refund 12 EUR?"}
    silent = settle(_task("input-required"), agent="desk")
    assert isinstance(silent, InputRequired)
    assert "without words" in silent.question


def test_output_of_several_parts_keeps_them_all() -> None:
    assert output_of([{"a": 1.0}], []) == {"a": 1}
    assert output_of([{"a": 1}, [2.0, 2.5]], ["done", "really"]) == {
        "data": [{"a": 1}, [2, 2.5]],
        "text": "done\nreally",
    }
    assert output_of([], ["only words"]) == {"text": "only words"}
    assert output_of([], []) == {}
    assert whole({"n": [1.0, {"m": 3.0}], "x": 0.5, "s": "1.0"}) == {
        "n": [1, {"m": 3}],
        "x": 0.5,
        "s": "1.0",
    }


@pytest.mark.parametrize(
    ("followed_in", "attempt", "state", "expected"),
    [
        (1, 1, "working", True),  # redelivered
        (1, 2, "working", True),  # retried after a timeout
        (1, 2, "input-required", True),  # the re-run after a reviewer's approval
        (1, 1, "completed", True),  # redelivered after it finished: the same answer
        (1, 2, "failed", False),  # a new attempt after a failure starts afresh
        (1, 2, "completed", False),
    ],
)
def test_which_deliveries_continue_the_remote_task(
    followed_in: int, attempt: int, state: str, expected: bool
) -> None:
    assert continues(followed_in=followed_in, attempt=attempt, state=state) is expected
