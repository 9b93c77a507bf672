"""`dashfleet watch`: a live view of this machine in the terminal, optionally exported.

`--export FORMAT:PATH` (repeatable) writes every snapshot with any enabled exporter
(`register_exporters`: the built-in `csv` and `jsonl`, or a plugin's); `--export-csv` and
`--export-jsonl` are its aliases. The files are written where the user says (relative paths are
taken from the current folder, missing folders are created) and are appended to when they already
exist, so a restarted watch loses nothing. `dashfleet web` exports with the same helpers.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from datetime import timezone
from pathlib import Path
from typing import Any, Iterable

import click

from ..text import visible
from . import _context, config_option

log = logging.getLogger(__name__)

CLEAR = "\x1b[H\x1b[2J"


# --- rendering (also used by `dashfleet status`) --------------------------------------------------


def unit_table(collectors: Iterable[Any]) -> list[tuple[re.Pattern[str], str]]:
    """(pattern, unit) for every metric the collectors describe; `<N>` parts match any segment."""
    table = []
    for collector in collectors:
        for info in getattr(collector, "metrics", []) or []:
            pattern = re.escape(info.name)
            pattern = re.sub(r"<[^>]*>", r"[^.]+", pattern.replace(r"\<", "<").replace(r"\>", ">"))
            table.append((re.compile(pattern + r"\Z"), info.unit))
    return table


def unit_of(name: str, table: list[tuple[re.Pattern[str], str]]) -> str:
    for rx, unit in table:
        if rx.match(name):
            return unit
    return "%" if name.endswith(".percent") else ""


def human(value: float, unit: str) -> str:
    """A value as a person reads it: 23.4 GiB, 1.2 MiB/s, 3 h 12 min, 12.5 %."""
    if unit in ("bytes", "B/s"):
        suffix = "/s" if unit == "B/s" else ""
        size = float(value)
        for prefix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(size) < 1024 or prefix == "TiB":
                return (f"{size:.0f} {prefix}" if prefix == "B" else f"{size:.1f} {prefix}") + suffix
            size /= 1024
    if unit == "s":
        secs = int(value)
        days, rest = divmod(secs, 86400)
        hours, rest = divmod(rest, 3600)
        mins = rest // 60
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {mins} min"
        return f"{mins} min {secs % 60} s" if mins else f"{secs} s"
    if unit == "unix time":
        from datetime import datetime

        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if unit == "%":
        return f"{value:.1f} %"
    text = f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"
    if not unit or unit == "bool":
        return text
    return f"{text}{unit}" if unit.startswith("/") else f"{text} {unit}"


def render(doc: Any, units: list[tuple[re.Pattern[str], str]], title: str = "") -> str:
    """The readable view of one snapshot (a StatusDocument-like object). Text from the machine
    (hostname, facts, finding messages) has its control and bidi characters made visible."""
    h = doc.health
    when = doc.collected_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"{visible(doc.hostname)} ({visible(doc.machine_id)})  {when}{'  ' + title if title else ''}",
             f"health {h.score}/100  {h.status.upper()}"]
    for f in h.findings:
        lines.append(f"  ! {f.severity:<8} {visible(f.message)}")
    group = None
    for name in sorted(doc.metrics):
        prefix = name.split(".", 1)[0]
        if prefix != group:
            group = prefix
            lines.append(visible(prefix))
        lines.append(f"  {visible(name):<34} {human(doc.metrics[name], unit_of(name, units))}")
    if doc.facts:
        lines.append("facts")
        for name in sorted(doc.facts):
            lines.append(f"  {visible(name):<34} {visible(doc.facts[name])}")
    return "\n".join(lines)


# --- export ----------------------------------------------------------------------------------------


def export_targets(export: Iterable[str], csv_path: str | None = None,
                   jsonl_path: str | None = None) -> list[tuple[str, str]]:
    """(exporter name, path) pairs from `--export FORMAT:PATH` and its `--export-csv/-jsonl` aliases."""
    targets = [(name, path) for name, path in (("csv", csv_path), ("jsonl", jsonl_path)) if path]
    for value in export:
        name, sep, path = value.partition(":")
        if not sep or not name or not path:
            raise click.BadParameter(
                f"{value!r} is not FORMAT:PATH; write e.g. --export csv:snapshots.csv "
                f"(FORMAT is an exporter's name, see `dashfleet plugins`)", param_hint="--export")
        targets.append((name, path))
    return targets


def open_exports(ctx: _context.Context, targets: list[tuple[str, str]]) -> list[tuple[str, Any, Any]]:
    """Open each (exporter name, path) for appending; returns (path, sink, file) triples.

    A sink that wants to see what a file already holds (CSV keeps the file's header) gets it
    through its optional `resume`; no exporter is special-cased here.
    """
    from ..exporting import exporters, open_export_file, resume_sink, unknown_exporter

    if not targets:
        return []
    registry = exporters(ctx.pm, ctx.settings)
    opened: list[tuple[str, Any, Any]] = []
    try:
        for name, path in targets:
            factory = registry.get(name)
            if factory is None:
                raise click.BadParameter(unknown_exporter(name, registry), param_hint="--export")
            resolved = Path(path).expanduser().resolve()
            if any(str(resolved) == done for done, _, _ in opened):
                raise click.BadParameter(f"{resolved} is named twice; give each export its own file",
                                         param_hint="--export")
            try:
                had_content = resolved.exists() and resolved.stat().st_size > 0
                fh = open_export_file(resolved, "a")  # missing parent folders are created
            except OSError as exc:
                raise click.ClickException(
                    f"cannot open export file {resolved}: {exc.strerror or exc}; choose a writable path") from None
            try:
                sink = factory(fh)
                if had_content:
                    resume_sink(sink, str(resolved))
            except Exception as exc:  # a plugin's exporter: say which, and what it said
                fh.close()
                raise click.ClickException(f"exporter {name!r} cannot write {resolved}: "
                                           f"{type(exc).__name__}: {exc}") from None
            opened.append((str(resolved), sink, fh))
            click.echo(f"exporting {name.upper()} to {resolved}", err=True)
    except BaseException:
        close_exports(opened)
        raise
    return opened


def close_exports(opened: list[tuple[str, Any, Any]]) -> None:
    for _, sink, fh in opened:
        try:
            sink.close()
        finally:
            fh.close()


# --- the command -----------------------------------------------------------------------------------


@click.command()
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Stop after this many snapshots (default: until Ctrl-C).")
@click.option("--export", "export", multiple=True, metavar="FORMAT:PATH",
              help="Append every snapshot to PATH with the exporter FORMAT (csv, jsonl or a "
                   "plugin's); repeatable.")
@click.option("--export-csv", "export_csv", type=click.Path(dir_okay=False), default=None,
              help="Same as --export csv:FILE (a CSV row per snapshot, header row first).")
@click.option("--export-jsonl", "export_jsonl", type=click.Path(dir_okay=False), default=None,
              help="Same as --export jsonl:FILE (one JSON line per snapshot).")
@click.option("--plain", is_flag=True, help="Print snapshots one after another instead of redrawing.")
@config_option
def watch(interval: float, count: int | None, export: tuple[str, ...], export_csv: str | None,
          export_jsonl: str | None, plain: bool, config_path: str | None) -> None:
    """Live view of this machine, refreshed every --interval seconds; optionally exported."""
    from ..engine import Engine, default_machine_id
    from ..exporting import export_record
    from ..models import StatusDocument

    targets = export_targets(export, export_csv, export_jsonl)
    ctx = _context.load(config_path)
    engine = Engine(ctx.settings, ctx.pm)
    exports = open_exports(ctx, targets)
    redraw = sys.stdout.isatty() and not plain
    units = unit_table(engine.collectors.values())
    machine_id = default_machine_id()
    engine.startup()
    done = threading.Event()
    state: dict[str, Any] = {"seq": 0, "error": None}

    def snapshot() -> None:
        """One snapshot, run by the engine's scheduler every `interval` (never two at once, and no
        burst to catch up after a slow cycle or a suspended laptop)."""
        if done.is_set():
            return
        try:
            state["seq"] += 1
            seq = state["seq"]
            report, health = engine.cycle(machine_id, seq)
            for _, sink, _ in exports:
                sink.write(export_record(report, health))
            doc = StatusDocument(machine_id=report.machine_id, hostname=report.hostname,
                                 collected_at=report.collected_at, metrics=report.metrics,
                                 facts=report.facts, health=health)
            title = f"snapshot {seq}{'/' + str(count) if count else ''}, every {interval:g} s"
            view = render(doc, units, title)
            click.echo((CLEAR + view) if redraw else (view + "\n"))
            if count is not None and seq >= count:
                done.set()
        except BaseException as exc:  # an export that cannot be written ends watch, as it always did
            state["error"] = exc
            done.set()

    engine.every(interval, snapshot, job_id="watch")
    try:
        engine.start()
        while not done.wait(0.25):  # the main thread only waits, so Ctrl-C reaches it at once
            pass
    except KeyboardInterrupt:
        click.echo("", err=True)
    finally:
        engine.stop()  # waits for a snapshot in progress
        close_exports(exports)
        engine.shutdown()
    if state["error"] is not None:
        raise state["error"]


def add_commands(cli: click.Group) -> None:
    cli.add_command(watch)
