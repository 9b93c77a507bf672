"""The server's data is readable by its owner only: folders DashFleet creates are 0700, the files
it keeps there (databases, their -wal/-shm, state files, tokens) 0600.

Reports, audit rows and tokens are nobody else's business on a shared machine. A folder that
already existed is not changed (it may be shared on purpose, like the current folder): the files
in it are what is kept private. On Windows the permissions come from the folder's ACL
and these calls do nothing.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600
POSIX = os.name == "posix"


def private_folder(path: Path) -> None:
    """Create `path` (and missing parents) as 0700; an existing folder is left as it is."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    if POSIX:
        os.chmod(path, FOLDER_MODE)  # mkdir's mode is masked by the umask; this is exact


def private_file(path: Path) -> None:
    """Create `path` empty as 0600 if missing; make an existing one 0600 (a database created by an
    older version was 0644). A file owned by someone else is left alone, with a warning."""
    if not POSIX:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return
    os.close(fd)


def tighten(path: Path) -> None:
    """Make an existing file 0600 (nothing if it is missing or already private)."""
    if not POSIX:
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            os.chmod(path, mode & FILE_MODE)
        except PermissionError:
            log.warning("%s can be read by other users and is not ours to change: chmod 600 it", path)


def create_once(path: Path, text: str, mode: int = FILE_MODE) -> bool:
    """Write a small file (a token, a key, an id) that appears whole or not at all, once: True if
    this call created it, False if it already existed (another process may have won a race: read
    what it wrote). The text goes to a temporary file made with O_EXCL and fsynced, then is
    hard-linked into place, which fails if the file exists; where hard links are missing (FAT,
    some shares) O_EXCL on the file itself."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    _write_new(tmp, text, mode)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        try:
            _write_new(path, text, mode)
            return True
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)


def _write_new(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
