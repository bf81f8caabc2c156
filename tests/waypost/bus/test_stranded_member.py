"""StrandedWatch: when a consumer-group member without partitions rejoins its group."""

from __future__ import annotations

from waypost.bus.kafka.subscriber import StrandedWatch


def armed() -> StrandedWatch:
    watch = StrandedWatch(30)
    watch.arm()  # the broker restarted, say
    return watch


UNREAD = ((3, 10), (0, 0))  # (committed, log end) per partition: 7 records wait
READ = ((10, 10), (0, 0))


def test_records_waiting_with_no_member_committing_for_the_whole_time_rejoin() -> None:
    watch = armed()

    assert not watch.due(0, lambda: UNREAD)  # starts watching
    assert not watch.due(29, lambda: UNREAD)
    assert watch.due(30, lambda: UNREAD)
    # Then it watches afresh: the rejoin gets its own 30 s.
    assert not watch.due(35, lambda: UNREAD)
    assert watch.due(60, lambda: UNREAD)


def test_records_keep_coming_but_nobody_commits_them_rejoins() -> None:
    watch = armed()
    ends = iter([((0, 10),), ((0, 50),)])

    assert not watch.due(0, lambda: next(ends))
    assert watch.due(30, lambda: next(ends))


def test_a_member_idle_because_another_owns_and_commits_never_rejoins() -> None:
    watch = armed()
    committed = iter([((3, 10),), ((5, 12),), ((8, 14),), ((9, 20),)])

    assert not watch.due(0, lambda: next(committed))
    assert not watch.due(30, lambda: next(committed))
    assert not watch.due(60, lambda: next(committed))
    assert not watch.due(90, lambda: next(committed))


def test_nothing_unread_means_nothing_to_rejoin_for() -> None:
    watch = armed()

    assert not watch.due(0, lambda: READ)
    assert not watch.due(30, lambda: READ)
    assert not watch.due(60, lambda: READ)


def test_owning_partitions_again_starts_the_wait_over() -> None:
    watch = armed()
    assert not watch.due(0, lambda: UNREAD)

    watch.reset()
    assert not watch.due(60, lambda: UNREAD)  # disarmed: owning partitions is normal

    watch.arm()
    assert not watch.due(61, lambda: UNREAD)
    assert not watch.due(90, lambda: UNREAD)
    assert watch.due(91, lambda: UNREAD)


def test_in_steady_state_a_member_without_partitions_is_left_alone() -> None:
    watch = StrandedWatch(30)  # never armed: no upheaval seen

    assert not watch.due(0, lambda: UNREAD)
    assert not watch.due(30, lambda: UNREAD)
    assert not watch.due(600, lambda: UNREAD)


def test_a_broker_that_cannot_tell_its_offsets_is_not_a_reason_to_rejoin() -> None:
    watch = armed()

    assert not watch.due(0, lambda: None)
    assert not watch.due(30, lambda: None)
    assert not watch.due(60, lambda: None)
