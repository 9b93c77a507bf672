"""The machine key: a 256-bit secret made once per state folder and sent with every report.

The server binds the key's hash to (org, machine_id) the first time it sees it and refuses reports
for that machine without it, so a stolen or guessed machine id (the fleet token is shared by the
whole fleet) cannot overwrite another machine's history. The key lives in `<state>/machine.key`,
mode 0600, and is never logged or shown (`agent status` only says that it exists).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

from dashfleet_core.private_files import create_once

from .identity import IdentityError

log = logging.getLogger(__name__)

KEY_FILE = "machine.key"
HEADER = "X-DashFleet-Machine-Key"
# secrets.token_urlsafe(32): 43 characters of url-safe base64; accept longer keys made by hand.
_VALID = re.compile(r"^[A-Za-z0-9_-]{43,256}$")


class MachineKeyError(IdentityError):
    """The key file exists but cannot be used; replacing it silently would lock the machine out."""


def key_path(state_dir: Path) -> Path:
    return Path(state_dir) / KEY_FILE


def key_exists(state_dir: Path) -> bool:
    """For `agent status`: whether a key was made, without reading it."""
    return key_path(state_dir).is_file()


def load_or_create(state_dir: Path) -> str:
    """The key in `<state>/machine.key`, created on first use.

    The file appears atomically with its content: written to a temporary file made with O_EXCL,
    then hard-linked into place, which fails if another start won the race (its key is then used).
    """
    path = key_path(state_dir)
    existing = _read(path)
    if existing is not None:
        return existing
    key = secrets.token_urlsafe(32)
    create_once(path, key + "\n")  # a start that lost the race reads the winner's key below
    found = _read(path)
    if found is None:  # pragma: no cover - only if the file vanished between the two steps
        raise MachineKeyError(f"{path}: the machine key could not be created")
    if found == key:
        log.info("created this machine's key in %s", path)
    return found


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MachineKeyError(f"{path}: cannot read the machine key: {exc.strerror}") from None
    if not _VALID.match(text):
        raise MachineKeyError(
            f"{path}: the machine key is empty or damaged. Restore the file from a backup; or delete it "
            "so the agent makes a new key, and have an operator run `dashfleet machine reset-key "
            "<machine id>` on the server so the new key is accepted")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s was readable by other users: made it owner-only (0600)", path)
    return text
