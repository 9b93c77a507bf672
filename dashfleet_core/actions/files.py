"""Staying inside the folders an action owns: walk, open and delete without following a link out.

Where the OS allows it (Linux, macOS), the walk holds an open descriptor on each folder, opens
sub-folders relative to it with O_NOFOLLOW, and deletes by name relative to it: once a folder is
open, swapping it (or any folder above it) for a link cannot redirect a delete, which matters
because anyone may write in /tmp while a root-run cleanup walks it. Elsewhere (Windows) the
path-based fallback re-checks, right before each change, that no part of the path is a link.

An :class:`Entry` can be acted on only while the walk is still in the folder that holds it (its
descriptor is open); afterwards it is refused with :class:`StaleEntry` on every platform, so a
descriptor number the OS has since reused for another folder can never receive the delete.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
FD_WALK = bool(
    _NOFOLLOW and _DIRECTORY
    and os.scandir in os.supports_fd
    and {os.open, os.unlink, os.rmdir, os.stat} <= os.supports_dir_fd
)
CHOOSE_FIRST = 'docs/writing-actions.md, "Choose first, delete after"'


class PathEscape(Exception):
    """A path is not where it claims to be (outside the owned folder, or reached through a link)."""


class StaleEntry(ValueError):
    """An Entry used after its walk left the folder that holds it (like I/O on a closed file)."""


class _Folder:
    """A folder the walk is in: its open descriptor (None on the path-based walk) while `open`."""

    __slots__ = ("fd", "open")

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.open = True


class Entry:
    """One thing found by `walk_owned` (fields and lifetime: docs/writing-actions.md, "Touching
    files"). Its fields can be read at any time; acting on it needs the folder the walk found it
    in, so that is refused once the walk has left that folder."""

    __slots__ = ("_path", "_path_obj", "kind", "stat", "name", "_folder")

    def __init__(self, path: str | os.PathLike[str], kind: str, stat: os.stat_result, name: str = "",
                 dir_fd: int | None = None) -> None:
        self._path = os.fspath(path)
        self._path_obj: Path | None = None
        self.kind = kind  # file, dir, link or other
        self.stat = stat  # its own status: links not followed
        self.name = name or os.path.basename(self._path)
        self._folder = _Folder(dir_fd)  # built by hand, it has no walk to leave: it stays usable

    @classmethod
    def _found(cls, path: str, kind: str, stat: os.stat_result, name: str, folder: _Folder) -> "Entry":
        """The walk's constructor: no checks or defaults, as it runs once per file found."""
        entry = object.__new__(cls)
        entry._path, entry._path_obj, entry.kind, entry.stat, entry.name, entry._folder = (
            path, None, kind, stat, name, folder)
        return entry

    @property
    def path(self) -> Path:
        """Where it is: `root` joined with the names below it (built when first asked for, as a
        Path costs as much as the walk's own work per entry and most entries never need one)."""
        if self._path_obj is None:
            self._path_obj = Path(self._path)
        return self._path_obj

    def __repr__(self) -> str:
        return f"Entry(path={self._path!r}, kind={self.kind!r}, stale={self.stale})"

    @property
    def stale(self) -> bool:
        """True once the walk has left the folder that holds this entry."""
        return not self._folder.open

    @property
    def dir_fd(self) -> int | None:
        """The open folder that holds the entry (None on the path-based walk); StaleEntry once
        the walk has left it, as the number may by then belong to another folder."""
        if not self._folder.open:
            closed = "its folder descriptor is closed" if self._folder.fd is not None else "that folder is done"
            raise StaleEntry(
                f"{self._path}: this entry is stale, its walk has left the folder that holds it "
                f"({closed}); act on an entry inside the walk_owned loop, or note what to act on "
                f"and walk again ({CHOOSE_FIRST})")
        return self._folder.fd

    @property
    def identity(self) -> tuple[Path, int, int, int, int]:
        """Path, device, inode, size and modification time: equal across two walks while the same
        file sits unchanged at the same path (for "choose first, delete after")."""
        st = self.stat
        return (self.path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def owned_folder(path: str | os.PathLike[str]) -> Path | None:
    """An owned folder as an absolute, link-free path, or None if it does not exist.

    Links are resolved once, here (`/tmp` may itself be a link, as on macOS); below it nothing is
    followed.
    """
    expanded = os.path.expandvars(os.path.expanduser(os.fspath(path)))
    if not os.path.isabs(expanded):
        return None
    real = os.path.realpath(expanded)
    try:
        st = os.lstat(real)
    except OSError:
        return None
    return Path(real) if stat.S_ISDIR(st.st_mode) else None


def walk_owned(root: Path, check_time: Callable[[], None] | None = None) -> Iterator[Entry]:
    """Everything below `root` (not `root` itself), depth first, children before their folder.

    Enters every sub-folder, at any depth, in the order the OS lists them. Never follows a
    symbolic link (or Windows junction): a link is reported as `link` and not entered. Folders
    that cannot be read, or that changed into something else during the walk, are skipped.
    `check_time` is called before each entry (pass `context.check_time`).
    """
    if FD_WALK:
        try:
            fd = os.open(os.fspath(root), os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
        except OSError:
            return
        try:
            yield from _walk_fd(fd, os.fspath(root), check_time)
        finally:
            os.close(fd)
    else:
        yield from _walk_paths(os.fspath(root), check_time)


def _classify(entry: os.DirEntry, st: os.stat_result) -> str:
    # Windows: junctions and other reparse points are links too (Python 3.11's S_ISLNK misses them).
    reparse = getattr(st, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT
    if stat.S_ISLNK(st.st_mode) or reparse or _is_junction(entry):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def _walk_fd(fd: int, folder: str, check_time: Callable[[], None] | None) -> Iterator[Entry]:
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError:
        return
    here = _Folder(fd)
    try:
        for e in entries:
            if check_time is not None:
                check_time()
            try:
                st = os.stat(e.name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            kind = _classify(e, st)
            path = os.path.join(folder, e.name)
            if kind == "dir":
                try:
                    child = os.open(e.name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
                except OSError:  # gone, unreadable, or swapped for a link since the stat
                    continue
                try:
                    now = os.fstat(child)
                    if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                        yield from _walk_fd(child, path, check_time)
                    else:
                        continue
                finally:
                    os.close(child)
            yield Entry._found(path, kind, st, e.name, here)
    finally:
        here.open = False  # before the caller closes `fd`: entries from here are stale from now on


def _walk_paths(folder: str, check_time: Callable[[], None] | None) -> Iterator[Entry]:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return
    here = _Folder(None)
    try:
        for e in entries:
            if check_time is not None:
                check_time()
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            kind = _classify(e, st)
            if kind == "dir":
                yield from _walk_paths(e.path, check_time)
            yield Entry._found(e.path, kind, st, e.name, here)
    finally:
        here.open = False  # the same lifetime as the descriptor walk's, so code behaves alike everywhere


def _is_junction(entry: os.DirEntry) -> bool:
    is_junction = getattr(entry, "is_junction", None)  # Python 3.12+
    return bool(is_junction and is_junction())


def confirm_inside(root: Path, path: str | os.PathLike[str]) -> None:
    """Raise PathEscape unless `path` is strictly below `root` and no folder between them is a
    link now (`root` itself was resolved by `owned_folder`)."""
    root_s = os.fspath(root)
    norm = os.path.normpath(path)
    if os.path.commonpath([root_s, norm]) != root_s or norm == root_s:
        raise PathEscape(f"{path} is not inside {root_s}")
    folder = root_s
    for part in Path(os.path.relpath(os.path.dirname(norm), root_s)).parts:
        if part == ".":
            continue
        folder = os.path.join(folder, part)
        try:
            st = os.lstat(folder)
        except OSError:
            raise PathEscape(f"{path}: {folder} is gone") from None
        if not stat.S_ISDIR(st.st_mode) or getattr(st, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT:
            raise PathEscape(f"{path} is reached through a link ({folder})")


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _by_descriptor(target: Entry | str | os.PathLike[str]) -> int | None:
    """The open folder to act in for a walk's entry (StaleEntry once the walk left it), else None."""
    return target.dir_fd if isinstance(target, Entry) else None


def remove_owned_file(root: Path, target: Entry | str | os.PathLike[str]) -> int:
    """Delete one regular file inside `root`; returns its size. Links and others are refused.

    Pass the `Entry` from `walk_owned` (deleted by name in its open folder where the OS allows)
    or a path (checked with `confirm_inside`).
    """
    dir_fd = _by_descriptor(target)
    if isinstance(target, Entry) and dir_fd is not None:
        st = os.stat(target.name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or not _same(st, target.stat):
            raise PathEscape(f"{target._path} is no longer the regular file the walk found")
        os.unlink(target.name, dir_fd=dir_fd)  # unlink never follows a link
        return st.st_size
    path = target._path if isinstance(target, Entry) else target
    confirm_inside(root, path)
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise PathEscape(f"{path} is not a regular file")
    os.unlink(path)
    return st.st_size


def remove_owned_dir(root: Path, target: Entry | str | os.PathLike[str]) -> None:
    """Remove one empty folder inside `root` (rmdir: never recursive, never through a link)."""
    dir_fd = _by_descriptor(target)
    if isinstance(target, Entry) and dir_fd is not None:
        os.rmdir(target.name, dir_fd=dir_fd)
        return
    path = target._path if isinstance(target, Entry) else target
    confirm_inside(root, path)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise PathEscape(f"{path} is not a folder")
    os.rmdir(path)


def open_owned_file(root: Path, target: Entry | str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file inside `root` for reading, refusing links (O_NOFOLLOW where the OS has it)."""
    flags = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_BINARY", 0)
    dir_fd = _by_descriptor(target)
    if isinstance(target, Entry) and dir_fd is not None:
        fd = os.open(target.name, flags, dir_fd=dir_fd)
        path: str | os.PathLike[str] = target._path
    else:
        path = target._path if isinstance(target, Entry) else target
        confirm_inside(root, path)
        st = os.lstat(path)  # where O_NOFOLLOW is missing (Windows), refuse a link by looking first
        if not stat.S_ISREG(st.st_mode) or getattr(st, "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_REPARSE_POINT:
            raise PathEscape(f"{path} is not a regular file")
        fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathEscape(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
