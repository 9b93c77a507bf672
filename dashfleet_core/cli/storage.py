"""`dashfleet export` and `dashfleet migrate`: get stored reports out of any backend, or copy a
whole store from one backend to another. Data goes to stdout (or --output); logs, counts and
progress go to stderr, so `dashfleet export > file` is always clean."""

from __future__ import annotations

import inspect
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

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


def export_record(stored) -> dict[str, Any]:
    """One stored report as an export record: the sink contract's keys first, then the rest."""
    r = stored.report
    return {
        "machine_id": r.machine_id, "seq": r.seq, "collected_at": r.collected_at.isoformat(),
        "metrics": r.metrics, "facts": r.facts, "org": stored.org, "hostname": r.hostname,
        "os": r.os, "agent_version": r.agent_version, "received_at": stored.received_at.isoformat(),
        "health": stored.health.model_dump(mode="json"),
    }


def _make_sink(factory, stream, storage, filters) -> Any:
    """A sink whose columns are fixed up front (CSV) gets every metric and fact of the export."""
    try:
        accepts_columns = "columns" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepts_columns = False
    if not accepts_columns:
        return factory(stream)
    from dashfleet_plugins.storage.csv_sink import BASE_COLUMNS, FACT_PREFIX, HEALTH_COLUMNS

    metrics: set[str] = set()
    facts: set[str] = set()
    for stored in storage.iter_reports(**filters):
        metrics.update(stored.report.metrics)
        facts.update(stored.report.facts)
    columns = [*BASE_COLUMNS, *HEALTH_COLUMNS, *sorted(metrics), *(FACT_PREFIX + f for f in sorted(facts))]
    return factory(stream, columns=columns)


@click.command()
@click.option("--format", "fmt", required=True, help="Export sink: csv or jsonl (or a plugin's).")
@click.option("--machine", "machine_id", default=None, help="Only this machine id.")
@click.option("--since", default=None, help="From this time on: ISO-8601 or an age (30d, 12h).")
@click.option("--until", default=None, help="Up to this time: ISO-8601 or an age.")
@click.option("--org", default=None, help="Only this organisation (default: all).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file instead of stdout.")
@click.option("--storage", "url", default=None, help="Storage URL (default: [storage] url).")
@config_option
def export(fmt: str, machine_id: str | None, since: str | None, until: str | None, org: str | None,
           output: str | None, url: str | None, config_path: str | None) -> None:
    """Write stored reports, oldest first, one per line (CSV or JSONL), to stdout or --output."""
    from ..plugins import gather

    ctx = _context.load(config_path)
    sinks = gather(ctx.pm, "register_exporters", "export sink")
    if fmt not in sinks:
        raise click.BadParameter(f"{fmt!r} is not an export format; available: "
                                 f"{', '.join(sorted(sinks)) or 'none'}", param_hint="--format")
    filters = {"org": org, "machine_id": machine_id, "since": parse_when(since, "--since"),
               "until": parse_when(until, "--until")}
    storage = _open(ctx, url)
    try:
        stream = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            sink = _make_sink(sinks[fmt], stream, storage, filters)
            count = 0
            for stored in storage.iter_reports(**filters):
                sink.write(export_record(stored))
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
