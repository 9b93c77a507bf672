"""The window's CSV export: the snapshots it holds, appended to a file the user picks.

The rows are written by the `csv` exporter plugin, the same as `dashfleet watch --export-csv`
(formula cells defused, control characters shown); appending to a file that already has a header
keeps its columns. Each export writes only the snapshots not yet written to that file in this
session, so pressing the button twice does not duplicate rows, and nothing already in the file
is lost.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterable

from dashfleet_core.exporting import resume_sink

log = logging.getLogger(__name__)

DEFAULT_NAME = "metrics_desktop.csv"


def default_export_path(configured: str | None = None, home: Path | None = None) -> Path:
    """`[desktop] export_path`, else `Desktop/metrics_desktop.csv` in the home folder as the
    original app did, else the home folder itself when there is no Desktop folder."""
    if configured:
        return Path(configured).expanduser()
    home = Path.home() if home is None else home
    desktop = home / "Desktop"
    return (desktop if desktop.is_dir() else home) / DEFAULT_NAME


class ExportError(Exception):
    """The file cannot be written; the message names it and says why."""


class CsvExport:
    """Appends snapshots to CSV files, remembering per file the last one written (by `seq`)."""

    def __init__(self, factory: Callable[[Any], Any]) -> None:
        self._factory = factory
        self._last_seq: dict[str, int] = {}

    def write(self, path: Path | str, records: Iterable[dict[str, Any]]) -> int:
        """Append the records newer than the last export to `path`; returns how many were written.

        Missing parent folders are created. Raises ExportError when the file cannot be written."""
        target = Path(path).expanduser().resolve()
        key = str(target)
        last = self._last_seq.get(key, -1)
        fresh = [r for r in records if r.get("seq") is not None and r["seq"] > last]
        if not fresh:
            return 0
        written = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            had_content = target.exists() and target.stat().st_size > 0
            with open(target, "a", encoding="utf-8", newline="") as fh:
                sink = self._factory(fh)
                if had_content:
                    resume_sink(sink, key)
                for record in fresh:
                    sink.write(record)  # flushed row by row: what is counted is in the file
                    self._last_seq[key] = record["seq"]
                    written += 1
                sink.close()
        except OSError as exc:
            raise ExportError(exc.strerror or str(exc)) from None
        except Exception as exc:  # the exporter is a plugin: say what it said
            raise ExportError(f"{type(exc).__name__}: {exc}") from None
        log.info("exported %d snapshot(s) to %s", written, target)
        return written
