"""dashfleet_core.actions.files: walking and deleting inside owned folders without following a
link out, on real folders, in both walk modes (descriptor-relative where the OS has it, checked
paths)."""

from __future__ import annotations

import os
import sys

import pytest

from dashfleet_core.actions import (
    PathEscape,
    confirm_inside,
    open_owned_file,
    owned_folder,
    remove_owned_file,
    walk_owned,
)
from dashfleet_core.actions import files as files_mod

pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="symlinks need privileges on Windows")


# --- path confinement ----------------------------------------------------------------------------


@pytest.fixture(params=["fd", "paths"])
def walk_mode(request, monkeypatch):
    """Both ways of walking: by open folder descriptors (Linux, macOS) and by checked paths (Windows)."""
    if request.param == "paths":
        monkeypatch.setattr(files_mod, "FD_WALK", False)
    elif not files_mod.FD_WALK:
        pytest.skip("this OS has no descriptor-relative file calls")
    return request.param


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

