"""dashfleet_core.actions.files: walking and deleting inside owned folders without following a
link out, the entries' fields, and entries refused once their walk has left their folder; on
real folders, in both walk modes (descriptor-relative where the OS has it, checked paths)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from dashfleet_core.actions import (
    PathEscape,
    StaleEntry,
    confirm_inside,
    open_owned_file,
    owned_folder,
    remove_owned_dir,
    remove_owned_file,
    walk_owned,
)
from dashfleet_core.actions import files as files_mod

pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="symlinks need privileges on Windows")


# --- path confinement ----------------------------------------------------------------------------


@pytest.fixture
def linked_tree(tmp_path):
    owned, outside = tmp_path / "owned", tmp_path / "outside"
    (owned / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    (owned / "sub" / "a.txt").write_text("a")
    os.symlink(outside, owned / "link-dir")
    os.symlink(outside / "precious.txt", owned / "link-file")
    return owned, outside


def test_walk_and_remove_never_leave_the_owned_folder(linked_tree, walk_mode):
    owned, outside = linked_tree
    root = owned_folder(owned)
    entries = {os.path.relpath(e.path, root): e.kind for e in walk_owned(root)}
    assert entries == {"sub": "dir", "sub/a.txt": "file", "link-dir": "link", "link-file": "link"}
    with pytest.raises(PathEscape):
        remove_owned_file(root, str(owned / "link-file"))  # a link is not a regular file
    with pytest.raises(PathEscape):
        remove_owned_file(root, str(owned / "link-dir" / "precious.txt"))  # reached through a link
    with pytest.raises(PathEscape):
        confirm_inside(root, str(outside / "precious.txt"))
    with pytest.raises(PathEscape):
        confirm_inside(root, str(owned / ".." / "outside" / "precious.txt"))
    for entry in walk_owned(root):
        if entry.kind == "link":
            with pytest.raises((PathEscape, OSError)):  # OSError: O_NOFOLLOW refused it
                open_owned_file(root, entry).close()
        if entry.kind == "file":
            with open_owned_file(root, entry) as fh:
                assert fh.read() == b"a"
            assert remove_owned_file(root, entry) == 1
    assert not (owned / "sub" / "a.txt").exists()
    assert (outside / "precious.txt").read_text() == "keep me"
    assert os.path.islink(owned / "link-file") and os.path.islink(owned / "link-dir")


def test_a_folder_swapped_for_a_link_mid_walk_cannot_redirect_a_delete(tmp_path, walk_mode):
    """The tmp-cleaner race: after the walk finds sub/victim.txt, someone replaces sub with a link
    to a folder holding a file of the same name. The outside file must survive."""
    owned, outside = tmp_path / "owned", tmp_path / "outside"
    (owned / "sub").mkdir(parents=True)
    outside.mkdir()
    (owned / "sub" / "victim.txt").write_text("temp")
    (outside / "victim.txt").write_text("precious")
    root = owned_folder(owned)
    outcomes = []
    for entry in walk_owned(root):
        if entry.kind != "file":
            continue
        os.rename(owned / "sub", owned / "moved")
        os.symlink(outside, owned / "sub")
        try:
            remove_owned_file(root, entry)
            outcomes.append("deleted")
        except PathEscape:
            outcomes.append("refused")
    assert (outside / "victim.txt").read_text() == "precious"
    if walk_mode == "fd":  # deleted where the walk found it: inside the folder it had open
        assert outcomes == ["deleted"] and not (owned / "moved" / "victim.txt").exists()
    else:
        assert outcomes == ["refused"] and (owned / "moved" / "victim.txt").exists()


# --- the entries ---------------------------------------------------------------------------------


def test_entries_say_what_they_are_with_typed_fields(linked_tree, walk_mode):
    owned, outside = linked_tree
    root = owned_folder(owned)
    seen = {}
    for entry in walk_owned(root):
        assert isinstance(entry.path, Path) and entry.path == root / entry.path.relative_to(root)
        assert entry.name == entry.path.name and isinstance(entry.stat, os.stat_result)
        if walk_mode == "fd":
            assert isinstance(entry.dir_fd, int)
        else:
            assert entry.dir_fd is None
        seen[entry.path.relative_to(root).as_posix()] = entry
    assert list(seen).index("sub/a.txt") < list(seen).index("sub"), "children come before their folder"
    assert {k: e.kind for k, e in seen.items()} == {
        "sub": "dir", "sub/a.txt": "file", "link-dir": "link", "link-file": "link"}
    assert stat.S_ISLNK(seen["link-file"].stat.st_mode), "a link's own status, not its target's"
    assert seen["sub/a.txt"].stat.st_size == 1


def test_identity_is_equal_across_walks_until_the_file_changes(tmp_path, walk_mode):
    (tmp_path / "a.log").write_bytes(b"a")
    (tmp_path / "b.log").write_bytes(b"b")
    root = owned_folder(tmp_path)
    first = {e.name: e.identity for e in walk_owned(root)}
    assert first == {e.name: e.identity for e in walk_owned(root)}
    (tmp_path / "b.log").write_bytes(b"bigger")
    second = {e.name: e.identity for e in walk_owned(root)}
    assert second["a.log"] == first["a.log"] and second["b.log"] != first["b.log"]


# --- stale entries: refused with a clear message, never acted on -------------------------------


def test_an_entry_used_after_its_walk_ended_is_refused(tmp_path, walk_mode):
    (tmp_path / "old.tmp").write_text("x")
    (tmp_path / "empty").mkdir()
    root = owned_folder(tmp_path)
    entries = {e.name: e for e in walk_owned(root)}  # the walk ends here: its folders are closed
    assert entries["old.tmp"].stale
    with pytest.raises(StaleEntry, match=r"old\.tmp: this entry is stale.*inside the walk_owned loop"
                                         r".*Choose first, delete after"):
        remove_owned_file(root, entries["old.tmp"])
    with pytest.raises(StaleEntry):
        open_owned_file(root, entries["old.tmp"])
    with pytest.raises(StaleEntry):
        remove_owned_dir(root, entries["empty"])
    with pytest.raises(StaleEntry):
        entries["old.tmp"].dir_fd
    assert (tmp_path / "old.tmp").read_text() == "x" and (tmp_path / "empty").is_dir()
    assert entries["old.tmp"].path == root / "old.tmp", "its fields can still be read"


def test_an_entry_used_after_the_walk_left_its_folder_is_refused(tmp_path, walk_mode):
    """The walk goes on, but the sub-folder that holds the entry is done (its descriptor closed)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    root = owned_folder(tmp_path)
    kept = None
    outcomes = []
    for entry in walk_owned(root):
        if entry.name == "a.txt":
            kept = entry
            outcomes.append(("a.txt", kept.stale))
        elif entry.name == "sub":  # yielded after its children, once sub is closed
            outcomes.append(("sub", kept.stale))
            with pytest.raises(StaleEntry, match="a.txt: this entry is stale"):
                remove_owned_file(root, kept)
    assert outcomes == [("a.txt", False), ("sub", True)]
    assert (tmp_path / "sub" / "a.txt").exists()


def test_a_stale_entry_cannot_act_in_a_folder_that_reuses_its_descriptor(tmp_path):
    """Once the walk closed its folder, the OS hands the same descriptor number to the next folder
    opened; a stale entry must not rmdir a same-named folder there."""
    if not files_mod.FD_WALK:
        pytest.skip("this OS has no descriptor-relative file calls")
    owned, other = tmp_path / "owned", tmp_path / "other"
    (owned / "cache").mkdir(parents=True)
    (other / "cache").mkdir(parents=True)
    root = owned_folder(owned)
    for entry in walk_owned(root):
        if entry.name == "cache":
            stale, number = entry, entry.dir_fd
    fd = os.open(other, os.O_RDONLY)
    try:
        assert fd == number, "the descriptor number was reused"
        with pytest.raises(StaleEntry):
            remove_owned_dir(root, stale)
    finally:
        os.close(fd)
    assert (other / "cache").is_dir() and (owned / "cache").is_dir()


def test_an_entry_built_by_hand_stays_usable(tmp_path, walk_mode):
    from dashfleet_core.actions import Entry

    (tmp_path / "f.txt").write_text("f")
    root = owned_folder(tmp_path)
    entry = Entry(str(root / "f.txt"), "file", os.lstat(root / "f.txt"))
    assert not entry.stale and entry.path == root / "f.txt" and entry.name == "f.txt"
    assert remove_owned_file(root, entry) == 1 and not (tmp_path / "f.txt").exists()
