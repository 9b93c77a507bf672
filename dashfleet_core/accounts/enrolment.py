"""What an enrolling link hands out: a zip of the agent file and `dashfleet-agent.toml`.

The config names the server (`[server] public_url`) and holds a `report` key of the link's
organisation, minted when the link is downloaded, never before: a link nobody used leaks no key.
An agent started with the file beside its executable (or in its working folder, or given with
`--config`) reports into that organisation with no other flag (see `config.find_agent_config_file`).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
import zipfile
from pathlib import PurePosixPath
from typing import BinaryIO

from ..config import AGENT_CONFIG_FILE
from ..models import utcnow
from .keys import ApiKey
from .links import AgentLink

CHUNK = 1024 * 1024


def agent_config(server: str, token: str, org: str, link_id: str) -> str:
    """The TOML of an enrolled agent (strings written as TOML basic strings, which JSON's are)."""
    return (f"# Written by DashFleet on {utcnow():%Y-%m-%d %H:%M} UTC for organisation {org!r} (agent link {link_id}).\n"
            "# The agent reads this file when it lies beside its executable or in its working folder,\n"
            "# or when given with --config. The token is a secret: keep the file readable by the agent only.\n"
            "[agent]\n"
            f"server = {json.dumps(server)}\n"
            f"token = {json.dumps(token)}\n")


def _member(name: str, mode: int, compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A zip entry that unpacks with `mode` (unzip honours it: the agent stays executable, its
    config readable by its owner only)."""
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = compress
    info.external_attr = (stat.S_IFREG | mode) << 16
    return info


def enrolment_zip(link: AgentLink, file: BinaryIO, keys, server: str, *, by: str) -> tuple[BinaryIO, int, ApiKey]:
    """A temporary file holding the zip (rewound), its size and the key minted for it."""
    key, secret = keys.create(link.org, name=f"enrolled via link {link.id}", scopes=["report"], by=by)
    out = tempfile.TemporaryFile()
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_member(AGENT_CONFIG_FILE, 0o600), agent_config(server, secret, link.org, link.id))
            executable = bool(os.fstat(file.fileno()).st_mode & stat.S_IXUSR)
            # stored, not deflated: an agent binary is compressed already (20 MB: 0.1 s instead of 1.3 s)
            member_info = _member(PurePosixPath(link.path).name, 0o755 if executable else 0o644, zipfile.ZIP_STORED)
            with archive.open(member_info, "w", force_zip64=True) as member:
                while chunk := file.read(CHUNK):
                    member.write(chunk)
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        keys.revoke(key.id)
        raise
    return out, size, key
