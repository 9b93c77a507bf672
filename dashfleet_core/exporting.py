"""The export contract: one record shape for every exporter, and the sink protocol they implement.

`dashfleet watch --export` and `dashfleet export` both build records here and hand them to
whatever exporter the user named, built-in (`csv`, `jsonl`) or a plugin's, with no special case
for any of them: a sink that needs more than `write`/`close` says so with the optional methods
of :class:`ExportSink`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Protocol, runtime_checkable

if TYPE_CHECKING:  # only for type hints: importing this module stays cheap
    import pluggy

    from .config import Settings
    from .models import Health, Report
    from .plugins import Registry
    from .storage import StoredReport

log = logging.getLogger(__name__)

# The keys every record has, in this order; stored reports add STORED_KEYS, and `health` comes last.
RECORD_KEYS = ("machine_id", "seq", "collected_at", "metrics", "facts")
STORED_KEYS = ("org", "hostname", "os", "agent_version", "received_at")


@runtime_checkable
class ExportSink(Protocol):
    """What an exporter's factory returns. `close()` flushes but never closes the stream.

    Optional, looked up with `getattr` (implement them only when needed):

    - ``resume(existing: IO[str])`` -- called before the first `write` when `watch` appends to a
      file that already has content; `existing` is that file opened for reading (CSV reads its
      header there so new rows keep the file's columns);
    - ``prepare(records: Iterable[dict])`` -- called before the first `write` by `dashfleet
      export`, with every record the export will write, for a format whose layout is fixed up
      front (CSV's columns). It costs a second pass over storage, so only ask when you need it.
    """

    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


# What `register_exporters` registers under a name: called with an open text stream.
ExporterFactory = Callable[[IO[str]], ExportSink]


def export_record(report: Report, health: Health | None = None, *,
                  stored: StoredReport | None = None) -> dict[str, Any]:
    """The export record of one report (the only place records are built).

    `collected_at` (and `received_at`) are timezone-aware `datetime` objects in UTC; every other
    value is JSON-ready: `metrics` `{name: float}`, `facts` `{name: str}`, `health`
    `{"score": int, "status": str, "findings": [dict, ...]}`. A stored report (`stored`) adds
    `org`, `hostname`, `os`, `agent_version` and `received_at`, and its stored health.
    """
    record: dict[str, Any] = {
        "machine_id": report.machine_id,
        "seq": report.seq,
        "collected_at": report.collected_at,
        "metrics": report.metrics,
        "facts": report.facts,
    }
    if stored is not None:
        record.update(org=stored.org, hostname=report.hostname, os=report.os,
                      agent_version=report.agent_version, received_at=stored.received_at)
        health = stored.health if health is None else health
    if health is not None:
        record["health"] = health.model_dump(mode="json")
    return record


def stored_record(stored: StoredReport) -> dict[str, Any]:
    """The export record of a report read back from storage."""
    return export_record(stored.report, stored=stored)


def iso(value: Any) -> str:
    """A record value as text: datetimes as ISO-8601 (`2026-01-02T03:04:05+00:00`)."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def resume_sink(sink: Any, path: str) -> None:
    """Let a sink that appends to `path` read what the file already holds (see ExportSink)."""
    resume = getattr(sink, "resume", None)
    if resume is None:
        return
    with open(path, encoding="utf-8", newline="") as existing:
        resume(existing)


def prepare_sink(sink: Any, records: Callable[[], Iterable[dict[str, Any]]]) -> None:
    """Give a sink that asks for it (`prepare`) every record before the first write."""
    prepare = getattr(sink, "prepare", None)
    if prepare is not None:
        prepare(records())


def exporters(pm: pluggy.PluginManager, settings: Settings) -> Registry[ExporterFactory]:
    """Every enabled exporter, by name. A plugin whose `register_exporters` raises is logged and
    left out (its formats are then unknown), so it cannot break the other exports or `watch`."""
    from .plugins import gather

    return gather(pm, "register_exporters", "exporter", isolate=True, settings=settings)


def unknown_exporter(name: str, registry: Iterable[str]) -> str:
    """What to tell someone who named an exporter that is not there."""
    return (f"no exporter named {name!r} is enabled (enabled: {', '.join(sorted(registry)) or 'none'}); "
            f"install the plugin that provides it, or check [plugins] enabled/disabled")


def open_export_file(path: str | Path, mode: str = "a") -> IO[str]:
    """Open an export file for writing (`a` or `w`), creating its missing parent folders first:
    `--export-csv reports/2026/m.csv` works on a fresh machine instead of failing. Raises OSError
    (a parent that is a file, no permission) for the caller to turn into advice."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode, encoding="utf-8", newline="")


def default_export_path(filename: str) -> Path:
    """Where an export goes when the user names no file: the user's Desktop, as the original
    dashboard did, else the home folder (a service account or a server has no Desktop).

    The Desktop is the platform's own (Windows' known folder, so one moved to OneDrive is found;
    `XDG_DESKTOP_DIR` on Linux, whatever its language), from platformdirs."""
    from platformdirs import user_desktop_dir

    home = Path.home()
    try:
        desktop = Path(user_desktop_dir())
    except Exception as exc:  # noqa: BLE001 - an unusual platform: the home folder will do
        log.debug("no Desktop folder (%s); exporting to %s", exc, home)
        desktop = home
    return (desktop if desktop.is_dir() else home) / filename
