"""What the built-in cleanup actions share: a sweep of owned folders, and "is the app running?".

Not a plugin (the name starts with `_`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import psutil

from dashfleet_core.actions import (
    ActionContext,
    PathEscape,
    owned_folder,
    remove_owned_dir,
    remove_owned_file,
    walk_owned,
)

SAMPLE = 50  # paths listed in a result; the counts cover everything


def sweep(
    folders: Iterable[str],
    context: ActionContext,
    *,
    dry_run: bool,
    older_than_days: float = 0,
    keep: Callable[[str], bool] | None = None,
    remove_empty_dirs: bool = True,
) -> dict[str, Any]:
    """Delete (or, in a dry run, count) regular files older than `older_than_days` below each
    folder. Links are never followed nor deleted, files for which `keep(path)` is true are left,
    and folders emptied by the sweep are removed (never the owned folder itself).
    """
    cutoff = time.time() - older_than_days * 86400
    seen: set[str] = set()
    report: dict[str, Any] = {"folders": [], "files": 0, "bytes": 0, "links_skipped": 0,
                              "kept": 0, "errors": [], "sample": []}
    for folder in folders:
        root = owned_folder(folder)
        if root is None:
            report["folders"].append({"path": str(folder), "missing": True})
            continue
        if str(root) in seen:
            continue
        seen.add(str(root))
        entry_report = {"path": str(root), "files": 0, "bytes": 0}
        report["folders"].append(entry_report)
        for item in walk_owned(root, context.check_time):
            if item.kind == "link":
                report["links_skipped"] += 1
                continue
            if item.kind == "dir":
                if remove_empty_dirs and not dry_run and item.stat.st_mtime < cutoff:
                    try:
                        remove_owned_dir(root, item)  # rmdir: fails unless empty
                    except (OSError, PathEscape):
                        pass  # not empty, in use, or moved: leave it
                continue
            if item.kind != "file" or item.stat.st_mtime >= cutoff:
                continue
            if keep is not None and keep(str(item.path)):
                report["kept"] += 1
                continue
            size = item.stat.st_size
            if not dry_run:
                try:
                    size = remove_owned_file(root, item)
                except (OSError, PathEscape) as exc:
                    if len(report["errors"]) < SAMPLE:
                        report["errors"].append(f"{item.path}: {getattr(exc, 'strerror', None) or exc}")
                    continue
            entry_report["files"] += 1
            entry_report["bytes"] += size
            report["files"] += 1
            report["bytes"] += size
            if len(report["sample"]) < SAMPLE:
                report["sample"].append(str(item.path))
    return report


def running_processes(names: Iterable[str]) -> list[str]:
    """Which of these process names (case-insensitive, `.exe` optional) run now, for any user."""
    wanted = {n.lower().removesuffix(".exe") for n in names}
    found = set()
    for proc in psutil.process_iter(["name"]):
        name = (proc.info.get("name") or "").lower().removesuffix(".exe")
        if name in wanted:
            found.add(proc.info["name"])
    return sorted(found)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def home() -> Path:
    return Path(os.path.expanduser("~"))


def env_path(var: str, *parts: str) -> str | None:
    base = os.environ.get(var)
    return os.path.join(base, *parts) if base else None
