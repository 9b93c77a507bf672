"""`--token-file`: read the fleet token from a file, so it never appears on a command line (`ps`)
or in the process environment."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class TokenFileError(Exception):
    """The token file cannot be used; the message names the file and what to do."""


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The file's first line, stripped. A missing, unreadable or empty file is an error."""
    path = Path(path).expanduser()
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = fh.readline().strip()
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc.strerror or exc}; give the path of "
                             "a file holding the server's fleet token on its first line") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"the token file {path} is not text (UTF-8): its first line must be the "
                             "server's fleet token") from None
    if not first:
        raise TokenFileError(f"the token file {path} is empty (its first line is blank): write the "
                             "server's fleet token on its first line")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("the token file %s is readable by other users: chmod 600 it", path)
    return first
