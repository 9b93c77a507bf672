"""The original dashboard's state file next to a new DashFleet store: say how to bring it over.

The original kept its fleet in `logs/fleet_state.json` (relative to the folder it ran in). A
DashFleet server started there uses SQLite by default, so that file's machines and history would
silently vanish from the dashboard. Instead the server logs, once at start, the exact
`dashfleet migrate` command that copies them (safe to run again, also while the server runs), as
long as its store holds no machine but the server's own in the default organisation.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from pathlib import Path

from .config import Settings
from .models import DEFAULT_ORG
from .storage import Storage, redact_url

log = logging.getLogger(__name__)

LEGACY_FILE = Path("logs") / "fleet_state.json"


def legacy_state_files(settings: Settings, cwd: Path | None = None) -> list[Path]:
    """The original's state files present here: `logs/fleet_state.json` in the working folder and
    in the data folder (`[server] data_dir`), and `fleet_state.json` directly in the data folder;
    absolute, each once."""
    cwd = cwd or Path.cwd()
    data_dir = cwd / Path(settings.server.data_dir).expanduser()
    found: list[Path] = []
    for candidate in (cwd / LEGACY_FILE, data_dir / LEGACY_FILE, data_dir / LEGACY_FILE.name):
        path = candidate.resolve()
        if path.is_file() and path not in found:
            found.append(path)
    return found


def _command(*args: str) -> str:
    """A command line the user can paste into this platform's shell."""
    return subprocess.list2cmdline(args) if os.name == "nt" else shlex.join(args)


def target_url(storage: Storage, configured: str) -> tuple[str, bool]:
    """The store's URL as `dashfleet migrate` takes it from any folder, and whether the user must
    complete it. A file store's path is made absolute (its options kept); a server's URL loses its
    password (`***`) and its options, which may hold one too (`?password=`): no secret is logged."""
    path = getattr(storage, "path", None)
    if isinstance(path, Path) and storage.scheme in ("sqlite", "json"):
        query = configured.partition("?")[2]
        return f"{storage.scheme}:///{path.resolve()}" + (f"?{query}" if query else ""), False
    base, _, query = configured.partition("?")
    shown = redact_url(base)
    return shown, shown != base or bool(query)


def migration_hints(settings: Settings, storage: Storage, own_machine_id: str,
                    cwd: Path | None = None) -> list[str]:
    """One message per original state file found, with the `dashfleet migrate` command that
    copies it into `storage`; none when the store already holds another machine's reports (it is
    in use: migrated already, or fed by agents; the original's machines go to the default
    organisation) or when it is that very file."""
    files = legacy_state_files(settings, cwd)
    if not files:
        return []
    own_path = getattr(storage, "path", None)
    files = [f for f in files if not (isinstance(own_path, Path) and own_path.resolve() == f)]
    if not files:
        return []
    # Machines, not reports: retention deletes old samples (a migrated 2025 history included)
    # but keeps each machine's latest state, so a migrated store never looks new again.
    if any(m.machine_id != own_machine_id for m in storage.machines(org=DEFAULT_ORG)):
        log.info("the original dashboard's state file %s is here; the storage holds other machines "
                 "already, so no migration is offered", ", ".join(map(str, files)))
        return []
    target, incomplete = target_url(storage, settings.storage.url)
    hints = []
    for path in files:
        command = _command("dashfleet", "migrate", f"json:///{path}", target)
        hint = (f"the original dashboard's state file {path} is here and this server's storage holds no "
                f"machine from it yet, so its machines and history are not shown. To bring them over "
                f"(safe to run again, also while the server runs): {command}")
        if incomplete:
            hint += " (complete the target with the password and options of your [storage] url)"
        hints.append(hint)
    return hints


def offer_migration(settings: Settings, storage: Storage, own_machine_id: str) -> None:
    """Log `migration_hints` as warnings (run once, when the server starts its jobs)."""
    for hint in migration_hints(settings, storage, own_machine_id):
        log.warning(hint)
