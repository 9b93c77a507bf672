"""The FLEET_TOKEN agents present: from config or the environment, else generated once and kept in
the data folder, readable by its owner only. Fail closed: the server never accepts reports
without a token."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from dashfleet_core.config import Settings
from dashfleet_core.private_files import create_once, private_folder

log = logging.getLogger(__name__)

TOKEN_FILE = "fleet_token"


def token_path(settings: Settings) -> Path:
    return Path(settings.server.data_dir) / TOKEN_FILE


def resolve_fleet_token(settings: Settings) -> str:
    """`[server] token` / $FLEET_TOKEN if set; else the token stored in `<data_dir>/fleet_token`,
    created (mode 0600) on first start. Safe when several workers start at once: the file appears
    atomically with its content, and the losers read the winner's token."""
    if settings.server.token:
        return settings.server.token
    path = token_path(settings)
    existing = _read(path)
    if existing:
        return existing
    private_folder(path.parent)
    token = secrets.token_urlsafe(32)
    if not create_once(path, token + "\n"):  # another worker won the race: its token is the one
        return _read(path) or token
    log.warning("FLEET_TOKEN is not set: generated one; agents must send it. It is in %s "
                "(readable by this user only)", path.resolve())
    return token


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users: chmod 600 it", path)
    return text or None
