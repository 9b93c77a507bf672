"""The machine's stable id: created once, kept in `<state>/machine_id`, overridable.

The id must not change when the hostname does (a renamed machine keeps its history), so it is a
random UUID written on first start; the hostname travels beside it in every report.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from dashfleet_core.models import MACHINE_ID_PATTERN
from dashfleet_core.private_files import create_once

ID_FILE = "machine_id"
_VALID = re.compile(MACHINE_ID_PATTERN)


class IdentityError(Exception):
    """The machine id on disk or on the command line cannot be used; the message says why."""


def check_machine_id(value: str, where: str) -> str:
    value = value.strip()
    if not _VALID.match(value):
        raise IdentityError(
            f"{where}: machine id {value[:60]!r} is not valid: use 1-128 letters, digits and . _ : @ -, "
            "starting with a letter or digit"
        )
    return value


def machine_id(state_dir: Path, override: str | None = None) -> str:
    """`override` if given (not written to disk), else the id on disk, created on first use."""
    if override:
        return check_machine_id(override, "--machine-id")
    path = state_dir / ID_FILE
    try:
        return check_machine_id(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        pass
    create_once(path, str(uuid.uuid4()) + "\n", mode=0o644)  # a start that lost the race reads the winner's
    return check_machine_id(path.read_text(encoding="utf-8"), str(path))
