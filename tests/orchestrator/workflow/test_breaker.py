"""Circuit breakers, pure: when a capability's circuit opens, refuses, lets one probe
through, closes and opens again. No fixtures; the time is whatever the test says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.workflow.breaker import (
    DISABLED,
    Admission,
    BreakerPolicy,
    Circuit,
    CircuitBook,
    CircuitState,
    admit,
    change,
    failed,
    fold,
    released,
    succeeded,
)

T0 = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
POLICY = BreakerPolicy(failure_threshold=3, window_s=60, open_s=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fail_times(circuit: Circuit, *seconds: float, task_id: str = "t") -> Circuit:
    for second in seconds:
        circuit = failed(circuit, POLICY, task_id=task_id, now=at(second), error=f"boom {second}")
    return circuit


def opened() -> Circuit:
    """The circuit of `echo`, opened at T0 + 20 s (until T0 + 50 s)."""
    return fail_times(Circuit("echo"), 0, 10, 20)


def ask(circuit: Circuit, task_id: str, second: float) -> tuple[Admission, Circuit]:
    return admit(circuit, POLICY, task_id=task_id, now=at(second), probe_until=at(second + 10))


# --- closed -> open ------------------------------------------------------------------------


def test_a_closed_circuit_admits_and_counts_failures_below_the_threshold() -> None:
    circuit = fail_times(Circuit("echo"), 0, 10)

    admission, after = ask(circuit, "t1", 11)

    assert admission == Admission(True)
    assert after == circuit
    assert circuit.state is CircuitState.CLOSED
    assert circuit.failures == (at(0), at(10))
    assert circuit.last_error == "boom 10"


def test_the_threshold_of_failures_within_the_window_opens_it_for_open_s() -> None:
    circuit = opened()

    assert circuit.state is CircuitState.OPEN
    assert (circuit.opened_at, circuit.open_until) == (at(20), at(50))
    assert circuit.failures == (at(0), at(10), at(20))
    assert circuit.last_error == "boom 20"


def test_failures_older_than_the_window_no_longer_count() -> None:
    # 0 and 10 are more than 60 s before 75: only 75 and 80 count, below 3.
    circuit = fail_times(Circuit("echo"), 0, 10, 75, 80)

    assert circuit.state is CircuitState.CLOSED
    assert circuit.failures == (at(75), at(80))


def test_the_window_slides_rather_than_restarting() -> None:
    # A fixed window starting at 0 would have restarted at 60 and missed this.
    circuit = fail_times(Circuit("echo"), 0, 50, 65, 70)

    assert circuit.state is CircuitState.OPEN
    assert circuit.failures == (at(50), at(65), at(70))


def test_successes_do_not_clear_the_failures_of_a_closed_circuit() -> None:
    circuit = fail_times(Circuit("echo"), 0, 10)

    assert succeeded(circuit, task_id="t", now=at(15)) == circuit
    assert fail_times(circuit, 20).state is CircuitState.OPEN


# --- open: refuse, then one probe -------------------------------------------------------------


def test_an_open_circuit_refuses_until_open_until() -> None:
    admission, after = ask(opened(), "t1", 49)

    assert not admission.allowed
    assert admission.retry_at == at(50)
    assert admission.reason == (
        f"the circuit of capability 'echo' is open until {at(50).isoformat(timespec='seconds')}"
    )
    assert after == opened()


def test_after_the_cool_down_the_next_task_is_the_one_probe() -> None:
    admission, probing = ask(opened(), "probe", 50)

    assert admission == Admission(True, probe=True)
    assert probing.state is CircuitState.HALF_OPEN
    assert (probing.probe_task_id, probing.probe_until) == ("probe", at(60))

    other, unchanged = ask(probing, "other", 51)
    assert not other.allowed
    assert other.retry_at == at(60)  # the probe's lease, sooner than 51 + open_s
    assert other.reason == (
        "the circuit of capability 'echo' is half-open and its probe (task probe) is still running"
    )
    assert unchanged == probing
    again, _ = ask(probing, "probe", 52)  # the probe's own next attempt may go
    assert again.allowed


def test_the_probes_success_closes_the_circuit_and_forgets_the_failures() -> None:
    _, probing = ask(opened(), "probe", 50)

    closed = succeeded(probing, task_id="probe", now=at(53))

    assert closed == Circuit("echo", last_error="boom 20", updated_at=at(53))
    assert ask(closed, "next", 54)[0].allowed


def test_the_probes_failure_opens_the_circuit_again_for_open_s() -> None:
    _, probing = ask(opened(), "probe", 50)

    again = failed(probing, POLICY, task_id="probe", now=at(55), error="still down")

    assert again.state is CircuitState.OPEN
    assert (again.opened_at, again.open_until) == (at(55), at(85))
    assert (again.probe_task_id, again.last_error) == (None, "still down")
    assert change(probing, again) == "reopened"


def test_outcomes_of_other_tasks_do_not_decide_a_half_open_circuit() -> None:
    _, probing = ask(opened(), "probe", 50)

    assert succeeded(probing, task_id="late", now=at(51)) == probing
    assert failed(probing, POLICY, task_id="late", now=at(51), error="x") == probing


def test_outcomes_while_open_change_nothing() -> None:
    circuit = opened()

    assert failed(circuit, POLICY, task_id="late", now=at(30), error="x") == circuit
    assert succeeded(circuit, task_id="late", now=at(30)) == circuit


def test_a_probe_failing_on_its_input_frees_the_slot_for_another_probe() -> None:
    _, probing = ask(opened(), "probe", 50)

    freed = released(probing, task_id="probe", now=at(52))

    assert freed.state is CircuitState.HALF_OPEN
    assert freed.probe_task_id is None
    admission, next_probe = ask(freed, "other", 53)
    assert admission.probe
    assert next_probe.probe_task_id == "other"


def test_a_probe_whose_lease_ran_out_without_an_outcome_lets_another_go() -> None:
    _, probing = ask(opened(), "probe", 50)  # lease until 60

    admission, next_probe = ask(probing, "other", 60)

    assert admission.probe
    assert next_probe.probe_task_id == "other"


def test_state_changes_have_names() -> None:
    circuit = fail_times(Circuit("echo"), 0, 10)
    is_open = fail_times(circuit, 20)
    _, half = ask(is_open, "p", 50)

    assert change(circuit, is_open) == "opened"
    assert change(is_open, half) == "half_opened"
    assert change(half, succeeded(half, task_id="p", now=at(51))) == "closed"
    assert change(circuit, fail_times(Circuit("echo"), 0)) is None


def test_a_disabled_policy_admits_everything_and_counts_nothing() -> None:
    circuit = Circuit("echo")
    for second in range(10):
        circuit = failed(circuit, DISABLED, task_id="t", now=at(second), error="x")

    assert circuit == Circuit("echo")
    assert admit(opened(), DISABLED, task_id="t", now=at(21), probe_until=at(31))[0].allowed


# --- the book of a batch ---------------------------------------------------------------------


def test_a_book_records_only_what_changed_a_circuit() -> None:
    book = CircuitBook.of(POLICY, [opened()])

    refused = book.admit("echo", workflow_id="w1", task_id="a", now=at(30), probe_until=at(40))
    book.record("succeeded", "other", workflow_id="w1", task_id="b", now=at(30))
    probe = book.admit("echo", workflow_id="w2", task_id="c", now=at(50), probe_until=at(60))
    book.record("failed", "other", workflow_id="w2", task_id="d", now=at(51), error="e")

    assert (refused.allowed, probe.probe) == (False, True)
    assert [(e.kind, e.capability, e.workflow_id) for e in book.events] == [
        ("admitted", "echo", "w2"),
        ("failed", "other", "w2"),
    ]
    assert book.get("echo").probe_task_id == "c"
    assert book.get("other").failures == (at(51),)
    assert book.get("unknown") == Circuit("unknown")
    assert list(book.changed()) == ["echo", "other"]


def test_failures_two_instances_saw_at_once_all_count_when_folded_onto_the_row() -> None:
    row = fail_times(Circuit("echo"), 0)
    first, second = CircuitBook.of(POLICY, [row]), CircuitBook.of(POLICY, [row])
    first.record("failed", "echo", workflow_id="w1", task_id="a", now=at(5), error="a")
    second.record("failed", "echo", workflow_id="w2", task_id="b", now=at(6), error="b")

    # Each book alone saw two failures; the row, folded in turn, sees all three.
    assert first.get("echo").state is CircuitState.CLOSED
    after_first = fold(row, POLICY, first.events)
    after_both = fold(after_first, POLICY, second.events)

    assert after_both.state is CircuitState.OPEN
    assert after_both.failures == (at(0), at(5), at(6))
