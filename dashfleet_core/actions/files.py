"""Staying inside the folders an action owns: walk, open and delete without following a link out.

Where the OS allows it (Linux, macOS), the walk holds an open descriptor on each folder, opens
sub-folders relative to it with O_NOFOLLOW, and deletes by name relative to it: once a folder is
open, swapping it (or any folder above it) for a link cannot redirect a delete, which matters
because anyone may write in /tmp while a root-run cleanup walks it. Elsewhere (Windows) the
path-based fallback re-checks, right before each change, that no part of the path is a link.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator


class PathEscape(Exception):
    """A path is not where it claims to be (outside the owned folder, or reached through a link)."""


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
FD_WALK = bool(
    _NOFOLLOW and _DIRECTORY
    and os.scandir in os.supports_fd
    and {os.open, os.unlink, os.rmdir, os.stat} <= os.supports_dir_fd
)


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


@dataclass
class Entry:
    """One thing found by `walk_owned`; `kind` is file, dir, link or other (socket, fifo...).

    With descriptor-based walking, `dir_fd` is the open folder that holds it and `name` its name
    there; both are valid only until the walk moves on, so act on an entry inside the loop.
    """

    path: str
    kind: str
    stat: os.stat_result
    name: str = ""
    dir_fd: int | None = None


def walk_owned(root: Path, check_time: Callable[[], None] | None = None) -> Iterator[Entry]:
    """Everything below `root`, depth first, children before their folder.

    Never follows a symbolic link (or Windows junction): a link is reported as `link` and not
    entered. Folders that cannot be read, or that changed into something else during the walk,
    are skipped.
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
        yield Entry(path, kind, st, e.name, fd)


def _walk_paths(folder: str, check_time: Callable[[], None] | None) -> Iterator[Entry]:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return
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
        yield Entry(e.path, kind, st, e.name, None)


def _is_junction(entry: os.DirEntry) -> bool:
    is_junction = getattr(entry, "is_junction", None)  # Python 3.12+
    return bool(is_junction and is_junction())


def confirm_inside(root: Path, path: str) -> None:
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


def remove_owned_file(root: Path, target: "Entry | str") -> int:
    """Delete one regular file inside `root`; returns its size. Links and others are refused.

    Pass the `Entry` from `walk_owned` (deleted by name in its open folder where the OS allows)
    or a path (checked with `confirm_inside`).
    """
    if isinstance(target, Entry) and target.dir_fd is not None:
        st = os.stat(target.name, dir_fd=target.dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or not _same(st, target.stat):
            raise PathEscape(f"{target.path} is no longer the regular file the walk found")
        os.unlink(target.name, dir_fd=target.dir_fd)  # unlink never follows a link
        return st.st_size
    path = target.path if isinstance(target, Entry) else target
    confirm_inside(root, path)
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise PathEscape(f"{path} is not a regular file")
    os.unlink(path)
    return st.st_size


def remove_owned_dir(root: Path, target: "Entry | str") -> None:
    """Remove one empty folder inside `root` (rmdir: never recursive, never through a link)."""
    if isinstance(target, Entry) and target.dir_fd is not None:
        os.rmdir(target.name, dir_fd=target.dir_fd)
        return
    path = target.path if isinstance(target, Entry) else target
    confirm_inside(root, path)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise PathEscape(f"{path} is not a folder")
    os.rmdir(path)


def open_owned_file(root: Path, target: "Entry | str"):
    """Open a regular file inside `root` for reading, refusing links (O_NOFOLLOW where the OS has it)."""
    flags = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_BINARY", 0)
    if isinstance(target, Entry) and target.dir_fd is not None:
        fd = os.open(target.name, flags, dir_fd=target.dir_fd)
        path = target.path
    else:
        path = target.path if isinstance(target, Entry) else target
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
