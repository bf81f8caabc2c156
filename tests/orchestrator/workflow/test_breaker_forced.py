"""Circuits opened and closed by hand, pure: an admin's hold refuses every attempt until
its time is up or it is closed, the automatic logic cannot undo it, and closing puts a
circuit back to normal. No fixtures; the time is whatever the test says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.workflow.breaker import (
    DISABLED,
    Admission,
    BreakerPolicy,
    Circuit,
    CircuitBook,
    CircuitEvent,
    CircuitState,
    admit,
    change,
    close_by_hand,
    failed,
    fold,
    open_by_hand,
    released,
    succeeded,
)

T0 = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
POLICY = BreakerPolicy(failure_threshold=3, window_s=60, open_s=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def held(for_s: float | None = 600, circuit: Circuit | None = None) -> Circuit:
    """The circuit of `echo`, opened by ada at T0 for ``for_s`` (None: until closed)."""
    return open_by_hand(
        circuit or Circuit("echo"),
        actor="ada",
        reason="vendor outage",
        now=T0,
        until=at(for_s) if for_s is not None else None,
    )


def probing() -> Circuit:
    """`echo` opened automatically at T0 + 2 s, half-open since T0 + 32 s: probe ``p``."""
    circuit = Circuit("echo")
    for second in (0, 1, 2):
        circuit = failed(circuit, POLICY, task_id="t", now=at(second), error="boom")
    circuit = ask(circuit, "p", 32)[1]
    assert circuit.state is CircuitState.HALF_OPEN
    assert circuit.probe_task_id == "p"
    return circuit


def ask(
    circuit: Circuit, task_id: str, second: float, policy: BreakerPolicy = POLICY
) -> tuple[Admission, Circuit]:
    return admit(circuit, policy, task_id=task_id, now=at(second), probe_until=at(second + 10))


def test_opening_by_hand_records_who_why_and_until_when() -> None:
    circuit = held(600)

    assert circuit.state is CircuitState.OPEN
    assert (circuit.opened_by, circuit.open_reason) == ("ada", "vendor outage")
    assert (circuit.opened_at, circuit.open_until) == (T0, at(600))
    assert circuit.held_open(at(599))
    assert not circuit.held_open(at(600))


def test_a_circuit_held_open_refuses_every_attempt_until_its_time_is_up() -> None:
    circuit = held(600)

    admission, after = ask(circuit, "t1", 300)

    assert not admission.allowed
    assert admission.retry_at == at(600)
    assert "opened by hand by ada (vendor outage)" in admission.reason
    assert after == circuit


def test_held_until_closed_it_refuses_and_asks_again_every_open_s() -> None:
    circuit = held(None)

    admission, after = ask(circuit, "t1", 10_000)

    assert not admission.allowed
    assert admission.retry_at == at(10_000 + POLICY.open_s)
    assert "until it is closed by hand" in admission.reason
    assert after == circuit
    assert circuit.held_open(at(10**7))


def test_outcomes_cannot_undo_a_hold() -> None:
    # A half-open circuit's probe was running when the admin opened it by hand: neither
    # the probe's success nor its failure nor a release changes the hold.
    circuit = held(600, probing())
    assert circuit.probe_task_id is None

    after = succeeded(circuit, task_id="p", now=at(33))
    after = failed(after, POLICY, task_id="p", now=at(34), error="boom")
    after = released(after, task_id="p", now=at(35))
    for second in range(36, 40):
        after = failed(after, POLICY, task_id=f"t{second}", now=at(second), error="boom")

    assert after == circuit


def test_when_the_time_is_up_the_next_task_is_the_probe_and_the_hold_is_gone() -> None:
    admission, after = ask(held(600), "t1", 600)

    assert admission == Admission(True, probe=True)
    assert after.state is CircuitState.HALF_OPEN
    assert (after.opened_by, after.open_reason) == (None, None)
    assert change(held(600), after) == "half_opened"
    # From here on it is an ordinary half-open circuit: the probe's success closes it.
    assert succeeded(after, task_id="t1", now=at(601)).state is CircuitState.CLOSED


def test_without_automatic_breakers_a_hold_still_refuses_then_simply_closes() -> None:
    refused, during = ask(held(600), "t1", 100, DISABLED)
    allowed, after = ask(held(600), "t1", 600, DISABLED)

    assert not refused.allowed
    assert during == held(600)
    assert allowed == Admission(True)
    assert after.state is CircuitState.CLOSED
    assert after.opened_by is None
    assert change(held(600), after) == "closed"


def test_opening_again_replaces_the_end_and_the_reason() -> None:
    again = open_by_hand(held(600), actor="bob", reason="still down", now=at(60), until=None)

    assert (again.opened_by, again.open_reason) == ("bob", "still down")
    assert (again.opened_at, again.open_until) == (at(60), None)


def test_opening_an_automatically_opened_circuit_by_hand_takes_it_over() -> None:
    automatic = Circuit("echo")
    for second in (0, 1, 2):
        automatic = failed(automatic, POLICY, task_id="t", now=at(second), error="boom")
    assert automatic.state is CircuitState.OPEN
    assert automatic.opened_by is None

    circuit = open_by_hand(automatic, actor="ada", reason="keep it shut", now=at(3), until=None)

    # The automatic end (T0 + 32 s) no longer lets a probe go.
    assert not ask(circuit, "t1", 40)[0].allowed
    assert circuit.failures == automatic.failures


def test_closing_by_hand_puts_any_circuit_back_to_normal() -> None:
    for circuit in (held(600), held(None), probing(), held(600, probing())):
        closed = close_by_hand(circuit, now=at(40))

        assert closed == Circuit("echo", last_error=circuit.last_error, updated_at=at(40))
        assert ask(closed, "t1", 41)[0].allowed
    # The failures are forgotten: it takes the whole threshold again to open it.
    closed = close_by_hand(probing(), now=at(40))
    for second in (41, 42):
        closed = failed(closed, POLICY, task_id="t", now=at(second), error="boom")
    assert closed.state is CircuitState.CLOSED


def test_a_batch_that_decided_before_the_hold_cannot_undo_it_when_folded() -> None:
    # A batch saw the circuit half-open and let its probe through; meanwhile an admin
    # opened it by hand. Folding the batch's events onto the locked row keeps the hold.
    book = CircuitBook.of(POLICY, [probing()])
    book.record("succeeded", "echo", workflow_id="w", task_id="p", now=at(33))
    book.record("failed", "echo", workflow_id="w", task_id="t2", now=at(34), error="boom")
    book.admit("echo", workflow_id="w", task_id="t3", now=at(35), probe_until=at(45))
    assert len(book.events) == 2  # the close, then the failure it counted
    row = held(600, probing())

    assert fold(row, POLICY, book.events) == row


def test_a_book_refuses_a_held_circuit_and_records_nothing() -> None:
    book = CircuitBook.of(POLICY, [held(600)])

    admission = book.admit("echo", workflow_id="w", task_id="t1", now=at(5), probe_until=at(15))

    assert not admission.allowed
    assert book.events == []
    # Other capabilities are untouched.
    assert book.admit("other", workflow_id="w", task_id="t2", now=at(5), probe_until=at(15))


def test_a_book_without_automatic_breakers_records_the_end_of_a_hold() -> None:
    book = CircuitBook.of(DISABLED, [held(600)])

    assert book.admit("echo", workflow_id="w", task_id="t1", now=at(600), probe_until=at(610))

    assert book.events == [CircuitEvent("admitted", "echo", "w", "t1", at(600), at(610))]
    assert book.get("echo").state is CircuitState.CLOSED
