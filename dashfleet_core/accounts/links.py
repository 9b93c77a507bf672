"""One-time agent download links: `/download/agent/<token>` hands out one file once.

A link is a record under its public id (`SERVER_SCOPE`, namespace `agent_links`) holding the
organisation, the file's path inside `[server] downloads_dir`, when it expires, whether it enrols
the agent, and the SHA-256 of its token (`<id>_<43 random characters>`, 256 bits): the token
itself is never stored. Whoever consumes a link first — the download or a revocation — adds the
link's record in `agent_links_used` with the storage's atomic `kv_add`, so of any number of
requests at once, on any worker or server, exactly one wins; every other answer is 410. The link
record outlives its expiry by RETAIN, so a used, revoked or expired link answers 410 (gone), not
404 (never was), for that long.

Paths are checked when the link is made (400 for `..`, absolute paths and symlinks that leave the
folder; 404 for a missing file) and again when it is downloaded, since the file may have become a
symlink since: `open_download` resolves it, requires it inside the folder and opens it.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

from ..models import utcnow
from .scope import SERVER_SCOPE, AccountError, digest

log = logging.getLogger(__name__)

NAMESPACE = "agent_links"
USED_NAMESPACE = "agent_links_used"
MIN_TTL = 60
MAX_TTL = 7 * 24 * 3600
RETAIN = timedelta(days=30)  # a link answers 410 (not 404) this long after it expired
MAX_PATH = 500
DOWNLOAD_PATH = "/download/agent/"  # + token: where the web host serves a link
LEGACY_PREFIX = "dist/"  # the original's paths were relative to the server's folder: dist/fleet_agent.exe
_TOKEN = re.compile(r"^([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_LINK_ID = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class AgentLink:
    id: str
    org: str
    path: str  # relative to downloads_dir, with forward slashes
    enroll: bool
    created_at: datetime
    expires_at: datetime
    created_by: str = ""

    def to_json(self) -> dict:
        return {"id": self.id, "org": self.org, "path": self.path, "enroll": self.enroll,
                "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat(),
                "created_by": self.created_by}


def link_id_of(token: str) -> str | None:
    """The public id of a well-formed token, else None."""
    m = _TOKEN.match(token)
    return m.group(1) if m else None


class AgentLinks:
    """Create, claim, revoke and list one-time links. `clock` exists for tests of expiry."""

    def __init__(self, storage, settings, keys, clock: Callable[[], datetime] = utcnow) -> None:
        self.storage = storage
        self.settings = settings
        self.keys = keys
        self.clock = clock

    def address(self, token: str) -> str:
        """The link as the API answers it: a path on this server."""
        return DOWNLOAD_PATH + token

    def url(self, token: str) -> str | None:
        """The full link when `[server] public_url` is set, else None."""
        base = self.settings.server.public_url
        return base.rstrip("/") + self.address(token) if base else None

    # --- the folder ---------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """`[server] downloads_dir`, relative to the working folder unless absolute."""
        return Path(self.settings.server.downloads_dir).expanduser()

    def check_path(self, path: object) -> str:
        """The normalised path of a file inside the folder (`dist/` stripped), or AccountError:
        400 for a path that leaves the folder (`..`, absolute, a symlink out), 404 for no file."""
        if not isinstance(path, str) or not path.strip():
            raise AccountError(422, 'give the file to hand out: {"path": "fleet_agent.exe"} (relative to '
                                    "[server] downloads_dir)", fields=["path"])
        raw = path.strip().replace("\\", "/")
        if len(raw) > MAX_PATH or "\x00" in raw or any(ord(c) < 32 for c in raw):
            raise AccountError(400, f"path {raw[:60]!r} is not a file name: give a plain relative path "
                                    "inside [server] downloads_dir", fields=["path"])
        if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or os.path.isabs(raw):
            raise AccountError(400, f"path {raw[:60]!r} is absolute: give it relative to [server] "
                                    "downloads_dir", fields=["path"])
        if raw.startswith(LEGACY_PREFIX):
            raw = raw[len(LEGACY_PREFIX):]
        parts = [p for p in PurePosixPath(raw).parts if p != "."]
        if ".." in parts:
            raise AccountError(400, f"path {path.strip()[:60]!r} contains '..': only files inside [server] "
                                    "downloads_dir can be handed out", fields=["path"])
        if not parts:
            raise AccountError(400, "path names the downloads folder itself: name a file in it", fields=["path"])
        clean = "/".join(parts)
        self._resolve(clean)  # 400 when a symlink leads out, 404 when there is no such file
        return clean

    def _resolve(self, relative: str) -> Path:
        """The real path of `relative` inside the folder: AccountError 400 if it resolves outside
        (a symlink out), 404 if it is not a regular file."""
        try:
            root = self.folder.resolve()
            target = (root / relative).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
            raise AccountError(400, f"path {relative[:60]!r} cannot be resolved ({type(exc).__name__}); "
                                    "give a plain file inside [server] downloads_dir", fields=["path"]) from None
        if not target.is_relative_to(root):
            raise AccountError(400, f"path {relative[:60]!r} leads out of [server] downloads_dir (a symlink "
                                    "to elsewhere): copy the file into the folder instead", fields=["path"])
        try:
            regular = stat.S_ISREG(target.stat().st_mode)
        except OSError:
            regular = False
        if not regular:
            raise AccountError(404, f"no file {relative[:60]!r} in the server's downloads folder ([server] "
                                    "downloads_dir): put it there, or give another path",
                               fields=["path"])
        return target

    def open_download(self, link: AgentLink) -> tuple[BinaryIO, int]:
        """The link's file, opened (checked again: it must still resolve inside the folder and be a
        regular file), and its size. AccountError 400/404 as for `check_path`."""
        target = self._resolve(link.path)
        # no following a symlink put there since, no waiting on a FIFO: only the checked file opens
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(target, flags)
        except OSError as exc:  # replaced by a symlink or removed since it was resolved
            raise AccountError(404, f"the file {link.path[:60]!r} of this link cannot be opened any more "
                                    f"({exc.strerror}); ask for a new link") from None
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            raise AccountError(404, f"{link.path[:60]!r} is no longer a regular file; ask for a new link")
        return os.fdopen(fd, "rb"), opened.st_size

    # --- links --------------------------------------------------------------------------------

    def create(self, org: str, path: object, ttl: object, *, enroll: object = False,
               by: str = "") -> tuple[str, AgentLink]:
        """A new link for `org`; returns its token (shown once, never stored) and the link."""
        self.keys.orgs.require(org)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
            raise AccountError(422, f"ttl must be a whole number of seconds from {MIN_TTL} to {MAX_TTL} "
                                    f"(7 days), got {str(ttl)[:40]}", fields=["ttl"])
        if not isinstance(enroll, bool):
            raise AccountError(422, "enroll must be true or false", fields=["enroll"])
        if enroll and not self.settings.server.public_url:
            raise AccountError(422, "an enrolling link writes the server's address into the agent's config, "
                                    "and this server has none: set [server] public_url (the address agents "
                                    "reach it at) and restart", fields=["enroll"])
        clean = self.check_path(path)
        now = self.clock()
        expires = now + timedelta(seconds=ttl)
        while True:
            link_id = secrets.token_hex(6)
            token = f"{link_id}_{secrets.token_urlsafe(32)}"
            record = {"org": org, "path": clean, "enroll": enroll, "hash": digest(token),
                      "created_at": now.isoformat(), "created_by": by, "expires_at": expires.isoformat()}
            if self.storage.kv_add(NAMESPACE, link_id, record, org=SERVER_SCOPE, expires_at=expires + RETAIN):
                return token, _link(link_id, record)

    def get(self, link_id: str) -> AgentLink | None:
        if not _LINK_ID.match(link_id):
            return None
        record = self.storage.kv_get(NAMESPACE, link_id, org=SERVER_SCOPE)
        return _link(link_id, record) if record else None

    def peek(self, token: str) -> AgentLink:
        """The link a token opens if it can still be downloaded, without using it; else
        AccountError 404 (unknown token) or 410 (used, revoked or expired)."""
        link = self._known(token)
        used = self.storage.kv_get(USED_NAMESPACE, link.id, org=SERVER_SCOPE)
        if used is not None:
            raise _gone(used)
        if self.clock() >= link.expires_at:
            raise AccountError(410, f"this download link expired at {link.expires_at.isoformat()}; ask "
                                    "for a new one")
        return link

    def claim(self, token: str) -> AgentLink:
        """Use the link: of every claim (and revocation) of one link, on any worker or server,
        exactly one succeeds; the rest get AccountError 410. 404 for an unknown token."""
        link = self.peek(token)
        if not self.storage.kv_add(USED_NAMESPACE, link.id, {"state": "downloaded", "at": self.clock().isoformat()},
                                   org=SERVER_SCOPE, expires_at=link.expires_at + RETAIN):
            raise _gone(self.storage.kv_get(USED_NAMESPACE, link.id, org=SERVER_SCOPE) or {})
        return link

    def _known(self, token: str) -> AgentLink:
        link_id = link_id_of(token) if isinstance(token, str) else None
        record = self.storage.kv_get(NAMESPACE, link_id, org=SERVER_SCOPE) if link_id else None
        if record is None or not hmac.compare_digest(record["hash"], digest(token)):
            raise AccountError(404, "no such download link: check the address you were given (links are "
                                    "single-use and are forgotten 30 days after they expire)")
        return _link(link_id, record)

    def revoke(self, org: str, link_id: str, *, by: str = "") -> AgentLink:
        """End a live link of `org` now; AccountError 404 if it has no live link of that id."""
        link = self.get(link_id)
        missing = AccountError(404, f"no live link {link_id[:40]!r} in organisation {org!r}; GET "
                                    "/api/agent/links lists them")
        if link is None or link.org != org or self.clock() >= link.expires_at:
            raise missing
        if not self.storage.kv_add(USED_NAMESPACE, link.id, {"state": "revoked", "at": self.clock().isoformat(),
                                                             "by": by},
                                   org=SERVER_SCOPE, expires_at=link.expires_at + RETAIN):
            raise missing  # downloaded (or revoked) first
        return link

    def list(self, org: str) -> list[AgentLink]:
        """The organisation's live links (not used, revoked or expired), oldest first."""
        used = self.storage.kv_list(USED_NAMESPACE, org=SERVER_SCOPE)
        now = self.clock()
        links = [_link(link_id, record) for link_id, record in self.storage.kv_list(NAMESPACE, org=SERVER_SCOPE).items()
                 if record.get("org") == org and link_id not in used]
        return sorted((link for link in links if now < link.expires_at), key=lambda link: link.created_at)


def _gone(used: dict) -> AccountError:
    if used.get("state") == "revoked":
        return AccountError(410, "this download link was revoked; ask for a new one")
    return AccountError(410, "this download link was used already (each link works once); ask for a new one")


def _link(link_id: str, record: dict) -> AgentLink:
    return AgentLink(id=link_id, org=record["org"], path=record["path"], enroll=bool(record.get("enroll")),
                     created_at=datetime.fromisoformat(record["created_at"]),
                     expires_at=datetime.fromisoformat(record["expires_at"]),
                     created_by=record.get("created_by", ""))
