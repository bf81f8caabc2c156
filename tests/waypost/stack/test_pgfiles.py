"""Reachability checks and relocation rules of ``waypost.stack.pgfiles``, for any user.

The account checked is made up (an id nobody has), so it sees the files as "others" do,
whoever runs the tests.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from waypost.errors import StackError
from waypost.stack import pgfiles

STRANGER = pgfiles.Account("stranger", uid=4_242_424, gids=frozenset({4_242_424}))


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory others may enter (pytest's own tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="waypost-pgfiles-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_private_directory_anywhere_above_a_path_closes_it(base: Path) -> None:
    private = base / "home"
    (private / "checkout" / "data").mkdir(parents=True)
    private.chmod(0o700)

    assert pgfiles.first_closed(private / "checkout" / "data", STRANGER) == private
    private.chmod(0o711)  # search without listing is enough to pass through
    assert pgfiles.first_closed(private / "checkout" / "data", STRANGER) is None


def test_owner_and_group_bits_count_for_their_owner_and_group(base: Path) -> None:
    private = base / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o710)
    owner = pgfiles.Account("owner", uid=private.stat().st_uid, gids=frozenset())
    member = pgfiles.Account("member", uid=4_242_425, gids=frozenset({private.stat().st_gid}))

    assert pgfiles.first_closed(private, owner) is None
    assert pgfiles.first_closed(private, member) is None
    assert pgfiles.first_closed(private, STRANGER) == private


def test_a_symlink_is_only_as_reachable_as_its_target(base: Path) -> None:
    private = base / "private"
    (private / "data").mkdir(parents=True)
    private.chmod(0o700)
    link = base / "link"
    link.symlink_to(private / "data")

    assert pgfiles.first_closed(link, STRANGER) == private


def test_a_tree_with_one_private_file_is_not_usable(base: Path) -> None:
    install = base / "pginstall"
    (install / "bin").mkdir(parents=True)
    binary = install / "bin" / "postgres"
    binary.write_text("")
    binary.chmod(0o755)
    assert pgfiles.tree_usable(install, STRANGER)

    binary.chmod(0o744)  # readable but not runnable by others
    assert not pgfiles.tree_usable(install, STRANGER)
    binary.chmod(0o700)
    assert not pgfiles.tree_usable(install, STRANGER)


def test_relocated_data_is_linked_from_the_requested_path_and_found_again(base: Path) -> None:
    requested = base / "home" / ".waypost" / "postgres"
    requested.parent.mkdir(parents=True)
    (base / "home").chmod(0o700)

    real = pgfiles.relocated_data_dir(requested, STRANGER, base / "state")
    again = pgfiles.relocated_data_dir(requested, STRANGER, base / "state")

    assert again == real
    assert real.parent.parent == base / "state"
    assert requested.is_symlink()
    assert requested.resolve() == real
    assert (real.parent / "linked-from").read_text() == f"{requested}\n"
    assert pgfiles.first_closed(real, STRANGER) is None


def test_an_empty_requested_directory_is_replaced_by_the_link(base: Path) -> None:
    requested = base / "home" / "postgres"
    requested.mkdir(parents=True)

    real = pgfiles.relocated_data_dir(requested, STRANGER, base / "state")

    assert requested.is_symlink()
    assert requested.resolve() == real


def test_a_requested_directory_with_files_is_never_moved(base: Path) -> None:
    requested = base / "home" / "postgres"
    requested.mkdir(parents=True)
    (requested / "PG_VERSION").write_text("16\n")

    with pytest.raises(StackError, match="holds files") as raised:
        pgfiles.relocated_data_dir(requested, STRANGER, base / "state")

    assert "WAYPOST_DATA_DIR" in str(raised.value)
    assert (requested / "PG_VERSION").exists()


def test_a_state_root_that_cannot_be_created_names_it_and_what_to_set(base: Path) -> None:
    blocker = base / "file"
    blocker.write_text("")
    requested = base / "home" / "postgres"

    with pytest.raises(StackError) as raised:
        pgfiles.relocated_data_dir(requested, STRANGER, blocker / "state")

    message = str(raised.value)
    assert f"cannot create {blocker / 'state'}" in message
    assert "WAYPOST_DATA_DIR" in message
    assert "WAYPOST_DATABASE_URL" in message
    assert not requested.exists()


def test_a_state_root_others_cannot_enter_is_refused(base: Path) -> None:
    state = base / "state"
    state.mkdir(mode=0o700)
    state.chmod(0o700)

    with pytest.raises(StackError, match=f"{state} is closed to the 'stranger' user"):
        pgfiles.relocated_data_dir(base / "home" / "postgres", STRANGER, state)
