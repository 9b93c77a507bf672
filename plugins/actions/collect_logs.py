"""collect_logs: a zip of recent system and DashFleet logs plus a system summary, for support.

Recent means modified within `days`. System logs are the log folders (Linux and macOS `/var/log`,
macOS `~/Library/Logs`) plus the system journal or event log exported by a fixed command
(`journalctl`, `wevtutil`, `log show`). Links inside the log folders are not followed, each file
is cut to its last `max_file_mb` MiB, and the zip stops growing at `max_total_mb` MiB. Settings:
`[plugins.collect_logs] log_folders`, `dashfleet_log_folders`, `output_dir`, `max_file_mb`,
`max_total_mb`.
"""

from __future__ import annotations

import json
import os
import platform as platform_mod
import socket
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, Field

from dashfleet_core import hookimpl
from dashfleet_core.actions import (
    ActionContext,
    ActionParams,
    BaseAction,
    Entry,
    PathEscape,
    open_owned_file,
    owned_folder,
    walk_owned,
)
from dashfleet_core.models import ActionResult

from ._common import SAMPLE, home, human_bytes

BINARY_NAMES = {"btmp", "wtmp", "lastlog", "faillog", "utmp"}
BINARY_SUFFIXES = (".journal", ".journal~", ".gz", ".xz", ".bz2", ".zst", ".evtx")
CHUNK = 1024 * 1024


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log_folders: list[str] | None = None
    dashfleet_log_folders: list[str] | None = None
    output_dir: str | None = None
    system_commands: bool = True
    max_file_mb: float = Field(default=20, gt=0)
    max_total_mb: float = Field(default=200, gt=0)


class Params(ActionParams):
    days: int = Field(default=2, ge=1, le=30, description="Collect logs modified in the last N days")


def system_log_folders(platform: str) -> list[str]:
    if platform == "linux":
        return ["/var/log"]
    if platform == "macos":
        return ["/var/log", str(home() / "Library/Logs")]
    return []


def system_log_commands(platform: str, days: int) -> dict[str, list[str]]:
    """Fixed commands that export the system journal / event log, by file name in the zip."""
    if platform == "linux":
        return {"journal.txt": ["journalctl", "--no-pager", "-o", "short-iso", "-n", "50000",
                                "--since", f"-{days * 24}h"]}
    if platform == "windows":
        return {f"eventlog-{log}.txt": ["wevtutil", "qe", log, "/c:5000", "/rd:true", "/f:text"]
                for log in ("System", "Application")}
    if platform == "macos":
        return {"unified-log.txt": ["log", "show", "--last", f"{days * 24}h", "--style", "syslog"]}
    return {}


def dashfleet_log_folders(context: ActionContext) -> list[str]:
    settings = context.settings
    folders = [os.path.join(os.path.abspath(settings.server.data_dir), "logs")]
    if settings.agent.state_dir:
        folders.append(os.path.join(os.path.abspath(settings.agent.state_dir), "logs"))
    return folders


def system_summary(context: ActionContext, days: int) -> dict:
    vm = psutil.virtual_memory()
    disks = {}
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        disks[part.mountpoint] = {"fstype": part.fstype, "total": usage.total, "used": usage.used,
                                  "percent": usage.percent}
    boot = psutil.boot_time()
    return {
        "collected_at": datetime.now(timezone.utc).isoformat(),
        "hostname": socket.gethostname(),
        "platform": context.platform,
        "os": f"{platform_mod.system()} {platform_mod.release()}",
        "os_version": platform_mod.version(),
        "machine": platform_mod.machine(),
        "python": platform_mod.python_version(),
        "boot_time": datetime.fromtimestamp(boot, timezone.utc).isoformat(),
        "uptime_seconds": round(time.time() - boot),
        "cpu_count": psutil.cpu_count(),
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory": {"total": vm.total, "available": vm.available, "percent": vm.percent},
        "disks": disks,
        "days": days,
        "requested_by": context.actor,
    }


def _wanted(entry, cutoff: float) -> bool:
    name = entry.name
    return (entry.kind == "file" and entry.stat.st_mtime >= cutoff and name not in BINARY_NAMES
            and not name.endswith(BINARY_SUFFIXES))


def _arcname(group: str, path: str) -> str:
    drive, rest = os.path.splitdrive(path)
    parts = [p for p in Path(rest).parts if p not in ("/", "\\")]
    if drive:
        parts.insert(0, drive.rstrip(":").replace("\\", "").replace("/", "") or "unc")
    return "/".join([group, *parts])


class CollectLogs(BaseAction):
    name = "collect_logs"
    description = "Zip recent system and DashFleet logs with a system summary; the result gives the zip's path"
    platforms = ("windows", "linux", "macos")
    changes_machine = False
    Params = Params
    options: Options  # [plugins.collect_logs], read in register_actions

    def run(self, params: Params, context: ActionContext) -> ActionResult:
        options = self.options
        cutoff = time.time() - params.days * 86400
        groups = {
            "system": options.log_folders if options.log_folders is not None
            else system_log_folders(context.platform),
            "dashfleet": options.dashfleet_log_folders if options.dashfleet_log_folders is not None
            else dashfleet_log_folders(context),
        }
        commands = system_log_commands(context.platform, params.days) if options.system_commands else {}
        out_dir = Path(os.path.abspath(options.output_dir or os.path.join(context.settings.server.data_dir,
                                                                          "support")))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())[:64]
        out = out_dir / f"dashfleet-logs-{host}-{stamp}.zip"

        folders: list[dict] = []
        links: list[str] = []

        def found():
            """(group, root, entry) for each wanted log file, yielded while its folder is open."""
            for group, paths in groups.items():
                for folder in paths:
                    root = owned_folder(folder)
                    folders.append({"group": group, "path": str(folder), "missing": root is None})
                    if root is None:
                        continue
                    for entry in walk_owned(root, context.check_time):
                        if entry.kind == "link":
                            links.append(str(entry.path))
                        elif _wanted(entry, cutoff) and os.path.abspath(entry.path) != str(out):
                            yield group, root, entry

        if params.dry_run:
            paths = [str(entry.path) for _, _, entry in found()]
            return self.result(
                True, f"would zip {len(paths)} log file(s) from the last {params.days} day(s), "
                      f"{len(commands)} exported log(s) and a system summary into {out}",
                params, path=str(out), files=len(paths), links_skipped=len(links),
                sample=paths[:SAMPLE], commands=[" ".join(c) for c in commands.values()],
                folders=folders)

        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        max_file = int(options.max_file_mb * 1024 * 1024)
        budget = int(options.max_total_mb * 1024 * 1024)
        included, skipped, errors = [], [], []
        command_results = {}
        # O_EXCL: never overwrite an existing file (or a link planted at that name); 0600: the zip
        # holds copies of logs other users may not read.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        with open(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for arc, argv in commands.items():
                done = context.run_command(argv, max_output=8 * 1024 * 1024)
                command_results[arc] = {"argv": argv, "returncode": done.returncode, "error": done.error}
                if done.stdout:
                    zf.writestr(f"system/{arc}", done.stdout)
                    budget -= len(done.stdout)
            for group, root, entry in found():
                if budget <= 0:
                    skipped.append(str(entry.path))
                    continue
                try:
                    written = _add_file(zf, root, entry, _arcname(group, str(entry.path)), min(max_file, budget))
                except (OSError, PathEscape) as exc:
                    if len(errors) < SAMPLE:
                        errors.append(f"{entry.path}: {getattr(exc, 'strerror', None) or exc}")
                    continue
                budget -= written
                included.append(str(entry.path))
            summary = system_summary(context, params.days)
            summary.update(files=included, commands=command_results, links_skipped=len(links),
                           skipped_over_budget=skipped, errors=errors)
            zf.writestr("summary.json", json.dumps(summary, indent=2, default=str))
        size = out.stat().st_size
        text = (f"zipped {len(included)} log file(s) from the last {params.days} day(s) and a system "
                f"summary into {out} ({human_bytes(size)})")
        if skipped:
            text += f"; {len(skipped)} file(s) left out to stay under {options.max_total_mb:g} MiB"
        return self.result(True, text, params, path=str(out), bytes=size, files=len(included),
                           sample=included[:SAMPLE], links_skipped=len(links), errors=errors,
                           commands=command_results, folders=folders)


def _add_file(zf: zipfile.ZipFile, root: Path, entry: Entry, arcname: str, limit: int) -> int:
    """Copy the last `limit` bytes of one file into the zip, opened without following links."""
    with open_owned_file(root, entry) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            fh.seek(size - limit)
        mtime = time.localtime(os.fstat(fh.fileno()).st_mtime)
        info = zipfile.ZipInfo(arcname, date_time=tuple(max(v, d) for v, d in
                                                         zip(mtime[:6], (1980, 1, 1, 0, 0, 0))))
        info.compress_type = zipfile.ZIP_DEFLATED
        written = 0
        with zf.open(info, "w") as dest:
            while written < limit:
                chunk = fh.read(min(CHUNK, limit - written))
                if not chunk:
                    break
                dest.write(chunk)
                written += len(chunk)
        return written


@hookimpl
def register_actions(register, settings):
    register(CollectLogs(settings.plugin_settings("collect_logs", Options)))
