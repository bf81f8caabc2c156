"""Reloading policy files without a restart: changed files are re-read, an invalid one
keeps its last good version, and readers in other threads always see a whole snapshot."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from waypost.governance import InvalidPolicies, PolicySet

HOUR_NS = 3600 * 1_000_000_000


def policy(version: int, *, deny: str = "wire_money", name: str | None = None) -> str:
    named = f"name: {name}\n" if name else ""
    return f'{named}version: {version}\napplies_to: "*"\nactions: {{deny: [{deny}]}}\n'


def write(path: Path, text: str, *, age_ns: int = 0) -> None:
    """Write ``text``; ``age_ns`` back-dates the file (as if written long ago)."""
    path.write_text(text)
    if age_ns:
        mtime = time.time_ns() - age_ns
        os.utime(path, ns=(mtime, mtime))


def versions(policies: PolicySet) -> dict[str, int]:
    return {p.name: p.version for p in policies.current().policies}


@dataclass
class Ticks:
    """A monotonic clock the test moves."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def test_policies_are_loaded_at_start(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy(1))
    write(tmp_path / "b.yml", policy(2))

    assert versions(PolicySet([tmp_path])) == {"a": 1, "b": 2}


def test_an_invalid_file_at_start_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "good.yaml", policy(1))
    write(tmp_path / "bad.yaml", "version: one\napplies_to: '*'\n")

    with pytest.raises(InvalidPolicies) as caught:
        PolicySet([tmp_path])

    (error,) = caught.value.errors
    assert error.source == str(tmp_path / "bad.yaml")
    assert str(error.problems[0]) == 'version (line 1): "one" is not of type "integer"'


def test_a_missing_directory_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicies, match="is not a directory"):
        PolicySet([tmp_path / "missing"])


def test_files_are_looked_at_again_once_the_interval_passed(tmp_path: Path) -> None:
    ticks = Ticks()
    write(tmp_path / "a.yaml", policy(1))
    policies = PolicySet([tmp_path], check_interval_s=2.0, monotonic=ticks)

    write(tmp_path / "a.yaml", policy(2, deny="refund_all"))
    ticks.now = 1.9
    assert versions(policies) == {"a": 1}
    ticks.now = 2.0
    assert versions(policies) == {"a": 2}


def test_a_reload_reports_added_changed_and_removed_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy(1))
    write(tmp_path / "b.yaml", policy(1))
    policies = PolicySet([tmp_path])
    before = policies.current()

    write(tmp_path / "a.yaml", policy(2, deny="refund_all"))
    (tmp_path / "b.yaml").unlink()
    write(tmp_path / "c.yaml", policy(7))
    report = policies.reload()

    assert report.added == (str(tmp_path / "c.yaml"),)
    assert report.changed == (str(tmp_path / "a.yaml"),)
    assert report.removed == (str(tmp_path / "b.yaml"),)
    assert report.failed == ()
    assert versions(policies) == {"a": 2, "c": 7}
    assert [p.version for p in before.policies] == [1, 1]  # snapshots never change


def test_an_invalid_edit_keeps_the_last_good_version_and_logs_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.yaml"
    write(path, policy(1))
    policies = PolicySet([tmp_path])
    good = policies.current().policies[0]

    write(path, "version: 2\napplies_to: '*'\nactions: {deny: [Wire Money]}\n")
    with caplog.at_level(logging.ERROR, logger="waypost.governance"):
        report = policies.reload()

    assert not report.changed_anything
    (failed,) = report.failed
    assert failed.source == str(path)
    assert policies.current().policies == (good,)
    assert [e.source for e in policies.errors] == [str(path)]
    (logged,) = caplog.records
    assert f"invalid policy {path}" in logged.getMessage()
    assert "actions.deny[0] (line 3)" in logged.getMessage()
    assert "keeping version 1 of policy 'a'" in logged.getMessage()

    write(path, policy(3))
    assert policies.reload().changed == (str(path),)
    assert versions(policies) == {"a": 3}
    assert policies.errors == []


def test_a_new_invalid_file_does_not_apply_until_it_is_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "a.yaml", policy(1))
    policies = PolicySet([tmp_path])

    write(tmp_path / "b.yaml", "version: 1\n")
    with caplog.at_level(logging.ERROR, logger="waypost.governance"):
        report = policies.reload()

    assert report.added == ()
    assert versions(policies) == {"a": 1}
    assert "no valid version of this file has been loaded" in caplog.text
    write(tmp_path / "b.yaml", policy(1))
    assert policies.reload().added == (str(tmp_path / "b.yaml"),)


def test_a_name_taken_by_another_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy(1))
    policies = PolicySet([tmp_path])

    write(tmp_path / "b.yaml", policy(1, name="a"))
    (failed,) = policies.reload().failed

    assert str(failed.problems[0]) == "name: policy name 'a' is used by another file"
    assert versions(policies) == {"a": 1}


def test_a_touched_file_with_the_same_content_is_not_a_change(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", policy(1))
    policies = PolicySet([tmp_path])

    os.utime(tmp_path / "a.yaml")
    assert not policies.reload().changed_anything


def test_a_rewrite_in_the_same_timestamp_tick_is_still_noticed(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    write(path, policy(1))
    policies = PolicySet([tmp_path])
    stat = path.stat()

    # Same size, same modification time: only the content tells the versions apart.
    write(path, policy(2))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert policies.reload().changed == (str(path),)
    assert versions(policies) == {"a": 2}


def test_a_file_whose_stat_is_old_and_unchanged_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    write(path, policy(1), age_ns=HOUR_NS)
    policies = PolicySet([tmp_path])
    stat = path.stat()

    write(path, policy(2))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a stat identical to before

    assert not policies.reload().changed_anything
    assert versions(policies) == {"a": 1}


def test_a_directory_that_disappears_keeps_its_policies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    write(directory / "a.yaml", policy(1))
    policies = PolicySet([directory])

    (directory / "a.yaml").unlink()
    directory.rmdir()
    with caplog.at_level(logging.ERROR, logger="waypost.governance"):
        report = policies.reload()

        again = policies.reload()

    assert report.removed == again.removed == ()
    assert report.failed == again.failed == ()
    assert versions(policies) == {"a": 1}
    assert [r.getMessage() for r in caplog.records] == [
        f"policy directory {directory} is missing; keeping its policies"
    ]  # once, not at every look


def test_readers_in_other_threads_always_see_a_whole_valid_snapshot(tmp_path: Path) -> None:
    paths = [tmp_path / f"p{i}.yaml" for i in range(3)]
    for path in paths:
        write(path, policy(1))
    # Interval 0: every reader looks at the files on every call, so reloads race too.
    policies = PolicySet([tmp_path], check_interval_s=0.0)
    stop = threading.Event()
    seen: set[tuple[int, ...]] = set()
    failures: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                seen.add(tuple(p.version for p in policies.current().policies))
        except BaseException as exc:
            failures.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        for version in range(2, 30):
            for path in paths:
                # Every other version is invalid; readers must only ever see valid ones.
                write(path, policy(version) if version % 2 else "version: [broken\n")
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    policies.reload()

    assert failures == []
    assert seen
    assert all(len(versions_) == 3 for versions_ in seen)
    assert all(v % 2 == 1 for versions_ in seen for v in versions_)
    assert versions(policies) == {"p0": 29, "p1": 29, "p2": 29}
