"""Where the agent keeps its state (machine id, seq, spool) when `--state-dir` is not given.

Each platform's usual place for a service's state:
Linux as root `/var/lib/dashfleet-agent`; Linux as a user `$XDG_STATE_HOME/dashfleet-agent`
(else `~/.local/state/dashfleet-agent`); Windows `%ProgramData%\\DashFleet\\agent`;
macOS as root `/Library/Application Support/DashFleet/agent`, else `~/Library/Application Support/DashFleet/agent`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_state_dir(env: dict[str, str] | None = None, platform: str | None = None,
                      is_root: bool | None = None) -> Path:
    """The default state folder for this platform and user (arguments exist for tests)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if platform.startswith("win"):
        base = env.get("ProgramData") or env.get("PROGRAMDATA") or r"C:\ProgramData"
        return Path(base) / "DashFleet" / "agent"
    if is_root is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if platform == "darwin":
        if is_root:
            return Path("/Library/Application Support/DashFleet/agent")
        return Path.home() / "Library" / "Application Support" / "DashFleet" / "agent"
    if is_root:
        return Path("/var/lib/dashfleet-agent")
    xdg = env.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "dashfleet-agent"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".local" / "state" / "dashfleet-agent"


def ensure_state_dir(path: Path) -> Path:
    """Create the folder (owner-only on POSIX: it holds the spool with the fleet's data)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


STATUS_FILE = "status.json"
# Where a root agent on Linux writes its status file: /run is world-readable, unlike the state folder.
RUN_STATUS_DIR = "/run/dashfleet-agent"


def status_file_for(configured: str | None, state_dir: Path, platform: str | None = None,
                    is_root: bool | None = None, env: dict[str, str] | None = None) -> Path:
    """Where the agent writes its secret-free status file, and where the desktop app reads it.

    `[agent] status_file` if set. Otherwise a place the desktop user can read: as root on Linux
    `/run/dashfleet-agent/status.json`; on Windows `%ProgramData%\\DashFleet\\status\\status.json`
    (readable by Users, unlike the agent's state folder); for an agent running as the desktop
    user, `status.json` in its own state folder."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if platform.startswith("win"):
        base = env.get("ProgramData") or env.get("PROGRAMDATA") or r"C:\ProgramData"
        return Path(base) / "DashFleet" / "status" / STATUS_FILE
    if is_root is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if is_root and platform.startswith("linux"):
        return Path(RUN_STATUS_DIR) / STATUS_FILE
    if is_root and platform == "darwin":
        return Path("/Library/Application Support/DashFleet/status") / STATUS_FILE
    return Path(state_dir) / STATUS_FILE
