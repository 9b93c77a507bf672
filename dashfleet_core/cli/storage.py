"""`dashfleet export` and `dashfleet migrate`: get stored reports out of any backend, or copy a
whole store from one backend to another. Data goes to stdout (or --output); logs, counts and
progress go to stderr, so `dashfleet export > file` is always clean."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone

import click

from . import _context, config_option

BATCH = 500  # reports per transaction when migrating
RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str | None, option: str) -> datetime | None:
    """ISO-8601 (a date, or a date and time; naive means UTC) or a age like `30d`, `12h`, `15m`."""
    if value is None:
        return None
    text = value.strip()
    match = RELATIVE.match(text)
    if match:
        return datetime.now(timezone.utc) - timedelta(**{UNITS[match[2]]: float(match[1])})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an ISO-8601 date/time (2026-01-31, 2026-01-31T08:00:00Z) nor an "
            f"age such as 30d, 12h or 15m", param_hint=option
        ) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _open(ctx: _context.Context, url: str | None):
    """Open a backend; a storage problem becomes a clean error (exit 1) with its advice."""
    from ..storage import StorageError, open_storage

    try:
        return open_storage(ctx.settings, ctx.pm, url)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--format", "fmt", required=True, help="Exporter: csv, jsonl or a plugin's.")
@click.option("--machine", "machine_id", default=None, help="Only this machine id.")
@click.option("--since", default=None, help="From this time on: ISO-8601 or an age (30d, 12h).")
@click.option("--until", default=None, help="Up to this time: ISO-8601 or an age.")
@click.option("--org", default=None, help="Only this organisation (default: all).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file instead of stdout (missing folders are created).")
@click.option("--storage", "url", default=None, help="Storage URL (default: [storage] url).")
@config_option
def export(fmt: str, machine_id: str | None, since: str | None, until: str | None, org: str | None,
           output: str | None, url: str | None, config_path: str | None) -> None:
    """Write stored reports, oldest first, with an exporter (csv, jsonl, ...), to stdout or --output."""
    from ..exporting import exporters, open_export_file, prepare_sink, stored_record, unknown_exporter

    ctx = _context.load(config_path)
    registry = exporters(ctx.pm, ctx.settings)
    if fmt not in registry:
        raise click.BadParameter(unknown_exporter(fmt, registry), param_hint="--format")
    filters = {"org": org, "machine_id": machine_id, "since": parse_when(since, "--since"),
               "until": parse_when(until, "--until")}
    storage = _open(ctx, url)
    try:
        try:
            stream = open_export_file(output, "w") if output else sys.stdout  # creates missing folders
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}; "
                                       "choose a writable path") from None
        try:
            sink = registry[fmt](stream)
            prepare_sink(sink, lambda: (stored_record(s) for s in storage.iter_reports(**filters)))
            count = 0
            for stored in storage.iter_reports(**filters):
                sink.write(stored_record(stored))
                count += 1
            sink.close()
        finally:
            if output:
                stream.close()
    finally:
        storage.close()
    click.echo(f"exported {count} report(s) as {fmt} to {output or 'stdout'}", err=True)


@click.command()
@click.argument("from_url")
@click.argument("to_url")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, only the counts.")
@config_option
def migrate(from_url: str, to_url: str, quiet: bool, config_path: str | None) -> None:
    """Copy everything from FROM_URL to TO_URL (reports and latest state, events, audit, kv).

    Safe to run again: what is already in TO_URL is not copied twice. Example:
    dashfleet migrate json:///logs/fleet_state.json sqlite:///data/dashfleet.db
    """
    if from_url == to_url:
        raise click.BadParameter("FROM_URL and TO_URL are the same storage", param_hint="TO_URL")
    ctx = _context.load(config_path)
    source = _open(ctx, from_url)
    try:
        target = _open(ctx, to_url)
        try:
            counts = copy_all(source, target, quiet=quiet)
        finally:
            target.close()
    finally:
        source.close()
    for what, (copied, present) in counts.items():
        click.echo(f"{what}: {copied} copied, {present} already there", err=True)
    for store in (source, target):
        lock = getattr(store, "lock_path", None)
        if lock is not None and lock.exists():
            click.echo(f"{lock} stays: it is the lock every DashFleet process takes before writing "
                       f"{store.path.name} (empty, readable by this user only); deleting it while a "
                       f"server uses the file could let two writers in at once", err=True)


def copy_all(source, target, *, quiet: bool = True) -> dict[str, tuple[int, int]]:
    """Copy every report, event, audit row and kv value; returns {kind: (copied, already there)}."""
    counts: dict[str, tuple[int, int]] = {}
    total = source.count_reports()
    copied = present = 0
    with click.progressbar(length=total, label="reports", file=sys.stderr,
                           hidden=quiet or total == 0) as bar:
        batch = []
        for stored in source.iter_reports():
            batch.append(stored)
            if len(batch) >= BATCH:
                results = target.import_reports(batch)
                copied, present = copied + sum(results), present + len(results) - sum(results)
                bar.update(len(batch))
                batch = []
        if batch:
            results = target.import_reports(batch)
            copied, present = copied + sum(results), present + len(results) - sum(results)
            bar.update(len(batch))
    counts["reports"] = (copied, present)
    results = [target.import_event(event, notified) for event, notified in source.iter_events()]
    counts["events"] = (sum(results), len(results) - sum(results))
    results = [target.import_audit(entry) for entry in source.iter_audit()]
    counts["audit"] = (sum(results), len(results) - sum(results))
    copied = present = 0
    for org, namespace, key, value, expires_at in source.iter_kv():
        if target.kv_get(namespace, key, org=org) == value:
            present += 1
            continue
        target.kv_put(namespace, key, value, org=org, expires_at=expires_at)
        copied += 1
    counts["kv"] = (copied, present)
    return counts


def add_commands(cli: click.Group) -> None:
    cli.add_command(export)
    cli.add_command(migrate)
