"""`SqlStorage`: every query of the storage contract, written once for SQLite and PostgreSQL.

A backend (sqlite.py, postgresql.py) supplies how to connect and run a transaction
(`_transaction`, handing out a `Tx`); the tables are in schema.py, the conversion of values to
and from columns in codecs.py. Design choices, all for the page queries:

- times are stored as UTC epoch seconds (double precision), so bucketing for charts is arithmetic;
- the chartable core metrics (`CORE_METRICS`) are real columns of `samples`; the other metrics are
  a compact blob of little-endian doubles (`extra`), in the order of the names listed in the
  sample's `details` row;
- what rarely changes between two reports of a machine (hostname, OS, agent version, facts, the
  names of the other metrics) is stored once per distinct value in `details` and referenced by
  id, which keeps a sample small;
- idempotency by `(org, machine_id, seq)` is a unique index, so it holds across processes;
- kv, counters and leases are single upsert statements, atomic in the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import time
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, Collection, Iterable, Iterator

from dashfleet_core.models import (
    DEFAULT_ORG, AuditEntry, Bucket, Event, Finding, Health, MachineState, Report, Sample,
    report_digest,
)
from dashfleet_core.storage import Storage, StorageError, StoredReport, merge_buckets

from .codecs import (
    StateCache, dumps, epoch, from_epoch, json_text, loads, machine_json, pack_extra, unpack_extra,
)
from .schema import (
    CORE_COLUMNS, CORE_METRICS, ROLLUP_COLUMNS, SAMPLE_COLUMNS, SLOT, SQLITE, Dialect, migrations,
    rollup_insert_select,
)

log = logging.getLogger(__name__)

PAGE = 2000  # rows per page when iterating a whole table (export, migrate)
PURGE_CHUNK = 5000  # rows per delete transaction, so retention never blocks writers for long
SAVE_CHUNK = 500  # reports per multi-row sample insert (15 parameters each; SQLite allows 32,766)
DETAIL_KEYS_MAX = 100_000  # cached `details` keys before the cache starts over
_NO_VALUE = (0, 0.0, None, None)  # a rollup's (n, sum, min, max) contribution of a missing metric
_SAMPLE_ROW = "(" + ", ".join("?" for _ in SAMPLE_COLUMNS) + ")"
_DETAIL_AT = SAMPLE_COLUMNS.index("detail_id")
_DIGEST_AT = SAMPLE_COLUMNS.index("digest")


@lru_cache(maxsize=64)
def _insert_samples_sql(rows: int) -> str:
    """A multi-row sample insert that skips a report already stored: the same `(org, machine_id,
    seq)`, or for a report without seq the same content digest."""
    return (f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}) VALUES "
            f"{', '.join([_SAMPLE_ROW] * rows)} ON CONFLICT DO NOTHING")


def _rollup_upsert() -> str:
    updates = ["n = rollups.n + 1"]
    for c in CORE_COLUMNS:
        updates += [
            f"{c}_n = rollups.{c}_n + excluded.{c}_n",
            f"{c}_sum = rollups.{c}_sum + excluded.{c}_sum",
            f"{c}_min = CASE WHEN rollups.{c}_min IS NULL OR excluded.{c}_min < rollups.{c}_min "
            f"THEN excluded.{c}_min ELSE rollups.{c}_min END",
            f"{c}_max = CASE WHEN rollups.{c}_max IS NULL OR excluded.{c}_max > rollups.{c}_max "
            f"THEN excluded.{c}_max ELSE rollups.{c}_max END",
        ]
    return (f"INSERT INTO rollups (org, machine_id, slot, n, {', '.join(ROLLUP_COLUMNS)}) "
            f"VALUES (?, ?, ?, 1, {', '.join('?' for _ in ROLLUP_COLUMNS)}) "
            f"ON CONFLICT (org, machine_id, slot) DO UPDATE SET {', '.join(updates)}")


_UPSERT_ROLLUP = _rollup_upsert()


@lru_cache(maxsize=None)
def _upsert_machine_sql(d: Dialect, by_seq: bool) -> str:
    """The machine's row: first/last seen widen; the rest follows the report that arrived last,
    or (`by_seq`, a machine whose reports carry its verified key) the highest `seq`. Never the
    newest `collected_at`: a report dated ahead would hold the row on its values."""
    latest = ["hostname", "os", "agent_version", "last_seq", "metrics", "facts", "health",
              "spool_dropped", "collected_at"]
    if by_seq:
        newer = ("machines.last_seq IS NULL OR excluded.last_seq IS NULL "
                 "OR excluded.last_seq >= machines.last_seq")
        updates = ",\n".join(f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE machines.{c} END"
                             for c in latest)
    else:
        updates = ",\n".join(f"{c} = excluded.{c}" for c in latest)
    return f"""INSERT INTO machines (org, machine_id, hostname, os, agent_version, last_seq,
                    first_seen, last_seen, collected_at, metrics, facts, health, spool_dropped)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (org, machine_id) DO UPDATE SET
                first_seen = {d.least}(machines.first_seen, excluded.first_seen),
                last_seen = {d.greatest}(machines.last_seen, excluded.last_seen),
                {updates}"""


class Tx:
    """One transaction's statements, with `?` placeholders whatever the driver wants."""

    def __init__(self, cursor: Any, convert: bool) -> None:
        self._cur = cursor
        self._convert = convert

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._convert else sql

    def run(self, sql: str, params: Iterable[Any] = ()) -> int:
        cur = self._cur.execute(self._sql(sql), tuple(params))
        return cur.rowcount

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return list(self._cur.execute(self._sql(sql), tuple(params)).fetchall())

    def one(self, sql: str, params: Iterable[Any] = ()) -> tuple | None:
        return self._cur.execute(self._sql(sql), tuple(params)).fetchone()

    def many(self, sql: str, rows: list[tuple]) -> None:
        self._cur.executemany(self._sql(sql), rows)


class SqlStorage(Storage):
    """Everything of the contract, on top of `_transaction(write)` supplied by a backend."""

    dialect: Dialect = SQLITE

    def __init__(self) -> None:
        self._detail_ids: dict[str, int] = {}
        self._detail_keys: dict[tuple, int] = {}  # (hostname, os, version, facts, names) -> id
        self._detail_bodies: dict[int, dict[str, Any]] = {}  # rows of `details` never change
        self._states = StateCache()

    # --- what a backend supplies ---------------------------------------------------------------

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _lock_for_migration(self, tx: Tx) -> None:
        """Serialise schema migrations between processes starting at once."""

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """The rows of one read statement. A single statement is consistent on its own, so a
        backend may run it without an explicit transaction (SQLite does: no BEGIN and COMMIT
        round trips on the hot paths that read one row)."""
        with self._transaction(write=False) as tx:
            return tx.all(sql, params)

    # --- schema --------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring the database to the newest schema version (schema.py), one process at a time."""
        steps = migrations(self.dialect)
        with self._transaction(write=True) as tx:
            self._lock_for_migration(tx)
            tx.run("CREATE TABLE IF NOT EXISTS dashfleet_schema (version INTEGER NOT NULL)")
            row = tx.one("SELECT version FROM dashfleet_schema")
            version = row[0] if row else 0
            if row is None:
                tx.run("INSERT INTO dashfleet_schema (version) VALUES (0)")
            if version > len(steps):
                raise StorageError(
                    f"{self._where()}: the database has schema version {version}, newer than this "
                    f"DashFleet knows ({len(steps)}): upgrade DashFleet, or restore a backup"
                )
            for number in range(version, len(steps)):
                for statement in steps[number]:
                    tx.run(statement)
                tx.run("UPDATE dashfleet_schema SET version = ?", (number + 1,))
                log.info("%s: schema migrated to version %d", self._where(), number + 1)

    def schema_version(self) -> int:
        with self._transaction(write=False) as tx:
            row = tx.one("SELECT version FROM dashfleet_schema")
        return row[0] if row else 0

    def _where(self) -> str:
        return self.scheme

    # --- reports -------------------------------------------------------------------------------

    def save_report(self, report: Report, health: Health, *, org: str = DEFAULT_ORG,
                    received_at: datetime | None = None) -> bool:
        return self.save_reports([(report, health)], org=org, received_at=received_at)[0]

    def save_reports(self, items: list[tuple[Report, Health]], *, org: str = DEFAULT_ORG,
                     received_at: datetime | None = None, by_seq: Collection[str] = ()) -> list[bool]:
        received = epoch(received_at) if received_at is not None else time.time()
        return self._save(
            [(org, report, health, received) for report, health in items], dedupe_unsequenced=False,
            by_seq=by_seq,
        )

    def import_report(self, stored: StoredReport) -> bool:
        """Store a report copied from another backend; a second copy is not stored, even one
        without `seq` (matched by machine and `collected_at`)."""
        return self.import_reports([stored])[0]

    def import_reports(self, stored: list[StoredReport]) -> list[bool]:
        rows = [(s.org, s.report, s.health, epoch(s.received_at)) for s in stored]
        return self._save(rows, dedupe_unsequenced=True)

    def _save(self, rows: list[tuple[str, Report, Health, float]], dedupe_unsequenced: bool,
              by_seq: Collection[str] = ()) -> list[bool]:
        """Store reports in one transaction; one bool per report (False: already stored).

        The parameters are built before the write transaction, so other writers wait only for
        the statements. Reports from agents (`save_reports`) take a set-wise path: one multi-row
        sample insert per chunk, whose `RETURNING` says which were new, then the machine and
        rollup upserts of those with `executemany`: a handful of statements per request."""
        prepared = [self._prepare(org, report, health, received) for org, report, health, received in rows]
        new_details: dict[str, int] = {}
        new_keys: dict[tuple, int] = {}
        with self._transaction(write=True) as tx:
            for (_, report, _, _), (sample, _, _, names) in zip(rows, prepared):
                sample[_DETAIL_AT] = self._detail_id(tx, report, names, new_details, new_keys)
            if dedupe_unsequenced:
                results = [self._save_one(tx, sample, machine, rollup)
                           for sample, machine, rollup, _ in prepared]
            else:
                results = []
                for start in range(0, len(prepared), SAVE_CHUNK):
                    results += self._save_chunk(tx, prepared[start:start + SAVE_CHUNK], by_seq)
        self._remember_details(new_details, new_keys)  # only ids whose insert was committed
        return results

    def _save_chunk(self, tx: Tx, prepared: list[tuple[list, tuple, tuple, list[str]]],
                    by_seq: Collection[str]) -> list[bool]:
        params: list[Any] = []
        for sample, _, _, _ in prepared:
            params += sample
        inserted: dict[tuple, int] = {}
        for key in tx.all(_insert_samples_sql(len(prepared)) + " RETURNING org, machine_id, seq, digest",
                          params):
            inserted[key] = inserted.get(key, 0) + 1
        results: list[bool] = []
        machine_rows: list[tuple] = []
        seq_rows: list[tuple] = []
        rollup_rows: list[tuple] = []
        for sample, machine, rollup, _ in prepared:
            key = (sample[0], sample[1], sample[2], sample[_DIGEST_AT])
            left = inserted.get(key, 0)
            if left:  # the first copies in the batch are the stored ones; a repeat is a duplicate
                inserted[key] = left - 1
                (seq_rows if sample[1] in by_seq else machine_rows).append(machine)
                rollup_rows.append(rollup)
            results.append(bool(left))
        if len(rollup_rows) == 1:  # a single report: execute is cheaper than executemany
            tx.run(_UPSERT_ROLLUP, rollup_rows[0])
        elif rollup_rows:
            tx.many(_UPSERT_ROLLUP, rollup_rows)
        for rows, ordered in ((machine_rows, False), (seq_rows, True)):
            if len(rows) == 1:
                tx.run(_upsert_machine_sql(self.dialect, ordered), rows[0])
            elif rows:
                tx.many(_upsert_machine_sql(self.dialect, ordered), rows)
        return results

    def _save_one(self, tx: Tx, sample: list, machine: tuple, rollup: tuple) -> bool:
        """One imported report; one without `seq` is a duplicate of a same-time sample without one."""
        org, machine_id, seq, collected = sample[:4]
        if seq is None and tx.one(
            "SELECT 1 FROM samples WHERE org = ? AND machine_id = ? AND collected_at = ? AND seq IS NULL",
            (org, machine_id, collected),
        ):
            return False
        if tx.one(_insert_samples_sql(1) + " RETURNING id", sample) is None:
            return False
        tx.run(_UPSERT_ROLLUP, rollup)
        tx.run(_upsert_machine_sql(self.dialect, False), machine)
        return True

    @staticmethod
    def _prepare(org: str, report: Report, health: Health,
                 received: float) -> tuple[list, tuple, tuple, list[str]]:
        """The parameters of a report's sample insert (its `details` id still to fill in, at
        `_DETAIL_AT`), machine upsert and rollup upsert, and the names of its extra metrics."""
        metrics = report.metrics
        collected = epoch(report.collected_at)
        names, extra = pack_extra(metrics)
        core = [metrics.get(name) for name in CORE_METRICS]
        findings = health.findings
        sample = [org, report.machine_id, report.seq, collected, received, health.score, health.status,
                  *core, extra,
                  dumps([f.model_dump(mode="json") for f in findings]) if findings else None,
                  None, report.spool_dropped, report_digest(report) if report.seq is None else None]
        machine = (org, report.machine_id, report.hostname, report.os, report.agent_version, report.seq,
                   received, received, collected, json_text(metrics), json_text(report.facts),
                   health.model_dump_json(), report.spool_dropped)
        values: list[Any] = []
        for v in core:
            values += _NO_VALUE if v is None else (1, v, v, v)
        rollup = (org, report.machine_id, int(collected // SLOT), *values)
        return sample, machine, rollup, names

    def rebuild_rollups(self) -> None:
        """Recompute every rollup from the samples (after a bulk load that bypassed `save`)."""
        with self._transaction(write=True) as tx:
            tx.run("DELETE FROM rollups")
            tx.run(rollup_insert_select(self.dialect, "1 = 1"))

    def _detail_id(self, tx: Tx, report: Report, names: list[str], new_details: dict[str, int],
                   new_keys: dict[tuple, int]) -> int:
        """The `details` row of what rarely changes in a report, by its values: a dict lookup for
        a known one (no JSON, no hash), an insert for a new one."""
        key = (report.hostname, report.os, report.agent_version, tuple(sorted(report.facts.items())),
               tuple(names))
        known = self._detail_keys.get(key) or new_keys.get(key)
        if known is not None:
            return known
        body = dumps({"hostname": report.hostname, "os": report.os,
                       "agent_version": report.agent_version, "facts": report.facts,
                       "extra_names": names})
        digest = hashlib.sha256(body.encode()).hexdigest()
        known = self._detail_ids.get(digest) or new_details.get(digest)
        if known is None:
            tx.run("INSERT INTO details (digest, body) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
                   (digest, body))
            (known,) = tx.one("SELECT id FROM details WHERE digest = ?", (digest,))
            new_details[digest] = known
        new_keys[key] = known
        return known

    def _remember_details(self, new_details: dict[str, int], new_keys: dict[tuple, int]) -> None:
        if len(self._detail_keys) + len(new_keys) > DETAIL_KEYS_MAX:
            self._detail_keys = {}  # bounded: a dict replaced whole is safe for other threads
        self._detail_keys.update(new_keys)
        self._detail_ids.update(new_details)

    def _details(self, tx: Tx, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Parsed `details` rows by id, from the cache or the database."""
        missing = sorted({i for i in ids if i not in self._detail_bodies})
        for start in range(0, len(missing), 500):
            chunk = missing[start:start + 500]
            for detail_id, body in tx.all(
                f"SELECT id, body FROM details WHERE id IN ({', '.join('?' for _ in chunk)})", chunk
            ):
                self._detail_bodies[detail_id] = json.loads(body)
        return self._detail_bodies

    def iter_reports(self, *, org: str | None = None, machine_id: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> Iterator[StoredReport]:
        where, params = self._report_filter(org, machine_id, since, until)
        cols = ", ".join(f"s.{c}" for c in CORE_COLUMNS)
        last: tuple[float, int] | None = None
        while True:
            page_where, page_params = list(where), list(params)
            if last is not None:
                page_where.append("(s.collected_at > ? OR (s.collected_at = ? AND s.id > ?))")
                page_params += [last[0], last[0], last[1]]
            clause = " AND ".join(page_where) or "1 = 1"
            with self._transaction(write=False) as tx:
                rows = tx.all(
                    f"""SELECT s.id, s.org, s.machine_id, s.seq, s.collected_at, s.received_at, s.score,
                            s.status, {cols}, s.extra, s.findings, s.spool_dropped, s.detail_id
                        FROM samples s
                        WHERE {clause} ORDER BY s.collected_at, s.id LIMIT {PAGE}""",
                    page_params,
                )
                details = self._details(tx, (r[-1] for r in rows))
            for row in rows:
                yield self._stored_report(row, details[row[-1]])
            if len(rows) < PAGE:
                return
            last = (rows[-1][4], rows[-1][0])

    def stored_report(self, machine_id: str, seq: int, *, org: str = DEFAULT_ORG) -> Report | None:
        cols = ", ".join(f"s.{c}" for c in CORE_COLUMNS)
        with self._transaction(write=False) as tx:
            row = tx.one(
                f"""SELECT s.id, s.org, s.machine_id, s.seq, s.collected_at, s.received_at, s.score,
                        s.status, {cols}, s.extra, s.findings, s.spool_dropped, s.detail_id
                    FROM samples s WHERE s.org = ? AND s.machine_id = ? AND s.seq = ?""",
                (org, machine_id, seq))
            if row is None:
                return None
            detail = self._details(tx, [row[-1]])[row[-1]]
        return self._stored_report(row, detail).report

    def max_seq(self, machine_id: str, *, org: str = DEFAULT_ORG) -> int | None:
        return self._read("SELECT max(seq) FROM samples WHERE org = ? AND machine_id = ?",
                          (org, machine_id))[0][0]

    def count_reports(self, *, org: str | None = None, machine_id: str | None = None,
                      since: datetime | None = None, until: datetime | None = None) -> int:
        where, params = self._report_filter(org, machine_id, since, until)
        clause = " AND ".join(where) or "1 = 1"
        with self._transaction(write=False) as tx:
            return tx.one(f"SELECT count(*) FROM samples s WHERE {clause}", params)[0]

    @staticmethod
    def _report_filter(org, machine_id, since, until) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("s.org = ?", org), ("s.machine_id = ?", machine_id),
                              ("s.collected_at >= ?", since and epoch(since)),
                              ("s.collected_at <= ?", until and epoch(until))):
            if value is not None:
                where.append(clause)
                params.append(value)
        return where, params

    def _stored_report(self, row: tuple, detail: dict[str, Any]) -> StoredReport:
        n = len(CORE_COLUMNS)
        (_id, org, machine_id, seq, collected, received, score, status) = row[:8]
        core = row[8:8 + n]
        extra, findings, spool_dropped, _detail_id = row[8 + n:]
        report = Report(
            machine_id=machine_id, hostname=detail["hostname"], os=detail["os"],
            agent_version=detail["agent_version"], seq=seq, collected_at=from_epoch(collected),
            metrics=self._metrics(core, detail["extra_names"], extra), facts=detail["facts"],
            spool_dropped=spool_dropped,
        )
        health = Health(score=score, status=status,
                        findings=[Finding(**f) for f in (loads(findings) or [])])
        return StoredReport(org=org, report=report, health=health, received_at=from_epoch(received))

    @staticmethod
    def _metrics(core: Iterable[float | None], names: list[str], extra: bytes | None) -> dict[str, float]:
        metrics = {name: value for name, value in zip(CORE_METRICS, core) if value is not None}
        if extra:
            metrics.update(unpack_extra(names, bytes(extra)))
        return metrics

    # --- fleet ---------------------------------------------------------------------------------

    _MACHINE_COLS = ("org, machine_id, hostname, os, agent_version, last_seq, first_seen, last_seen, "
                     "collected_at, metrics, facts, health, spool_dropped")

    def machines(self, *, org: str = DEFAULT_ORG, seen_since: datetime | None = None) -> list[MachineState]:
        sql = f"SELECT {self._MACHINE_COLS} FROM machines WHERE org = ?"
        params: list[Any] = [org]
        if seen_since is not None:
            sql += " AND last_seen >= ?"
            params.append(epoch(seen_since))
        return self._states.states(org, self._read(sql + " ORDER BY machine_id", params))

    def machine(self, machine_id: str, *, org: str = DEFAULT_ORG) -> MachineState | None:
        rows = self._read(f"SELECT {self._MACHINE_COLS} FROM machines WHERE org = ? AND machine_id = ?",
                          (org, machine_id))
        return MachineState.model_validate_json(machine_json(rows[0])) if rows else None

    # --- history -------------------------------------------------------------------------------

    def history(self, machine_id: str, *, org: str = DEFAULT_ORG, since: datetime | None = None,
                until: datetime | None = None, limit: int | None = None) -> list[Sample]:
        where, params = self._report_filter(org, machine_id, since, until)
        cols = ", ".join(f"s.{c}" for c in CORE_COLUMNS)
        sql = (f"SELECT s.seq, s.collected_at, s.received_at, s.score, s.status, {cols}, s.extra, "
               f"s.detail_id "
               f"FROM samples s WHERE {' AND '.join(where)} ORDER BY s.collected_at DESC, s.id DESC")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, int(limit)))
        with self._transaction(write=False) as tx:
            rows = tx.all(sql, params)
            details = self._details(tx, (r[-1] for r in rows))
        n = len(CORE_COLUMNS)
        return [
            Sample.model_construct(
                machine_id=machine_id, seq=r[0], collected_at=from_epoch(r[1]),
                received_at=from_epoch(r[2]), score=r[3], status=r[4],
                metrics=self._metrics(r[5:5 + n], details[r[-1]]["extra_names"], r[5 + n]),
            )
            for r in rows
        ]

    def history_buckets(self, machine_id: str, *, org: str = DEFAULT_ORG, since: datetime,
                        until: datetime, points: int = 300, metrics: list[str] | None = None) -> list[Bucket]:
        start, end = epoch(since), epoch(until)
        points = max(1, int(points))
        if end <= start:
            return []
        width = (end - start) / points
        d = self.dialect
        core = {name: col for name, col in CORE_METRICS.items() if metrics is None or name in metrics}
        wanted_extra = None if metrics is None else [m for m in metrics if m not in CORE_METRICS]
        scope = "s.org = ? AND s.machine_id = ? AND s.collected_at >= ? AND s.collected_at < ?"
        scope_params = [org, machine_id, start, end]
        bucket = f"{d.least}({d.bucket}, ?)"  # float rounding must not make a bucket past the last
        bucket_params = [start, width, points - 1]
        aggregates = "".join(f", min(s.{c}), avg(s.{c}), max(s.{c})" for c in core.values())
        rows: list[tuple[int, int, dict[str, tuple[float, float, float]]]] = []
        with self._transaction(write=False) as tx:
            if width >= 4 * SLOT:
                rows += self._core_buckets_from_rollups(tx, org, machine_id, start, end, width, points, core)
                if wanted_extra is None or wanted_extra:
                    rows += self._extra_buckets(tx, scope, scope_params, start, width, points, wanted_extra)
                return merge_buckets(rows, start, width, points)
            for row in tx.all(
                f"SELECT {bucket} AS b, count(*){aggregates} FROM samples s "
                f"WHERE {scope} GROUP BY b ORDER BY b",
                [*bucket_params, *scope_params],
            ):
                stats = {}
                for i, name in enumerate(core):
                    lo, avg, hi = row[2 + 3 * i: 5 + 3 * i]
                    if lo is not None:
                        stats[name] = (lo, avg, hi)
                rows.append((row[0], row[1], stats))
            if wanted_extra is None or wanted_extra:
                rows += self._extra_buckets(tx, scope, scope_params, start, width, points, wanted_extra)
        return merge_buckets(rows, start, width, points)

    def _core_buckets_from_rollups(self, tx: Tx, org: str, machine_id: str, start: float, end: float,
                                   width: float, points: int, core: dict[str, str]) -> list[tuple]:
        """The core metrics' buckets from whole slots, plus the raw samples of the slots that
        straddle a bucket edge (and of the ends of the range): the same figures as from every
        sample, from ~4,300 rollup rows and ~3,000 samples for a 30-day chart of 300 points."""
        first, last = math.ceil(start / SLOT), math.floor(end / SLOT)  # slots inside [start, end)
        if first >= last:
            raw_ranges, straddling = [(start, end)], []
        else:
            edges = (start + i * width for i in range(1, points))
            straddling = sorted({int(e // SLOT) for e in edges if e % SLOT and first <= e // SLOT < last})
            raw_ranges = [(start, first * SLOT), (last * SLOT, end)]
            raw_ranges += [(k * SLOT, (k + 1) * SLOT) for k in straddling]
        d = self.dialect
        per_metric = ", ".join(f"sum({c}_n), sum({c}_sum), min({c}_min), max({c}_max)" for c in core.values())
        acc: dict[int, list] = {}
        rows: list[tuple] = []
        if first < last:
            exclude = ""
            if straddling:
                exclude = f" AND slot NOT IN ({', '.join('?' for _ in straddling)})"
            rows += tx.all(
                f"SELECT {d.least}({d.floor_int('(slot * ' + str(SLOT) + ' - ?) / ?')}, ?) AS b, sum(n)"
                f"{', ' + per_metric if per_metric else ''} FROM rollups "
                f"WHERE org = ? AND machine_id = ? AND slot >= ? AND slot < ?{exclude} GROUP BY b",
                (start, width, points - 1, org, machine_id, first, last, *straddling),
            )
        raw_ranges = [(lo, hi) for lo, hi in raw_ranges if hi > lo]
        per_sample = ", ".join(f"count(s.{c}), coalesce(sum(s.{c}), 0), min(s.{c}), max(s.{c})"
                               for c in core.values())
        for part in range(0, len(raw_ranges), 400):  # one statement: an index seek per range
            ranges = raw_ranges[part:part + 400]
            values = ", ".join("(?, ?)" for _ in ranges)
            in_range = "s.org = ? AND s.machine_id = ? AND s.collected_at >= r.lo AND s.collected_at < r.hi"
            if d.lateral:  # one index range scan per range, whatever the planner's statistics say
                source = (f"r CROSS JOIN LATERAL (SELECT s.collected_at, {', '.join(f's.{c}' for c in core.values()) or 's.id'} "
                          f"FROM samples s WHERE {in_range} OFFSET 0) AS s")  # OFFSET 0: not flattened
            else:
                source = f"r JOIN samples s ON {in_range}"
            rows += tx.all(
                f"WITH r (lo, hi) AS (VALUES {values}) "
                f"SELECT {d.least}({d.bucket}, ?) AS b, count(*){', ' + per_sample if per_sample else ''} "
                f"FROM {source} GROUP BY b",
                (*(x for pair in ranges for x in pair), start, width, points - 1, org, machine_id),
            )
        for row in rows:
            slot = acc.setdefault(min(max(int(row[0]), 0), points - 1), [0, {}])
            slot[0] += int(row[1])
            for i, name in enumerate(core):
                cn, csum, cmin, cmax = row[2 + 4 * i: 6 + 4 * i]
                if not cn:
                    continue
                cur = slot[1].get(name)
                if cur is None:
                    slot[1][name] = [int(cn), float(csum), cmin, cmax]
                else:
                    cur[0] += int(cn)
                    cur[1] += float(csum)
                    cur[2] = min(cur[2], cmin)
                    cur[3] = max(cur[3], cmax)
        return [(index, n, {name: (v[2], v[1] / v[0], v[3]) for name, v in stats.items()})
                for index, (n, stats) in acc.items()]

    def _extra_buckets(self, tx: Tx, scope: str, scope_params: list[Any], start: float, width: float,
                       points: int, wanted: list[str] | None) -> list[tuple[int, int, dict]]:
        """min/avg/max of the non-core metrics per bucket, decoded here: they are a blob per sample."""
        samples = tx.all(f"SELECT s.collected_at, s.extra, s.detail_id FROM samples s "
                         f"WHERE {scope} AND s.extra IS NOT NULL", scope_params)
        details = self._details(tx, {r[2] for r in samples})
        layouts: dict[int, tuple[struct.Struct, list[tuple[int, str]]]] = {}
        acc: dict[int, dict[str, list[float]]] = {}
        for at, blob, detail_id in samples:
            layout = layouts.get(detail_id)
            if layout is None:
                names = details[detail_id]["extra_names"]
                keep = [(i, n) for i, n in enumerate(names) if wanted is None or n in wanted]
                layout = layouts[detail_id] = (struct.Struct(f"<{len(names)}d"), keep)
            values = layout[0].unpack(blob)
            stats = acc.setdefault(min(int((at - start) / width), points - 1), {})
            for i, name in layout[1]:
                value = values[i]
                s = stats.get(name)
                if s is None:
                    stats[name] = [value, value, value, 1]
                else:
                    if value < s[0]:
                        s[0] = value
                    if value > s[2]:
                        s[2] = value
                    s[1] += value
                    s[3] += 1
        return [(b, 0, {n: (v[0], v[1] / v[3], v[2]) for n, v in stats.items()})
                for b, stats in acc.items()]

    # --- events and audit ----------------------------------------------------------------------

    def add_event(self, event: Event) -> Event:
        return self._insert_event(event, notified=False)

    def _insert_event(self, event: Event, notified: bool) -> Event:
        body = event.model_dump_json(exclude={"id"})
        with self._transaction(write=True) as tx:
            (new_id,) = tx.one(
                "INSERT INTO events (org, machine_id, kind, at, body, notified_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (event.org, event.machine_id, event.kind, epoch(event.at), body,
                 time.time() if notified else None),
            )
        return event.model_copy(update={"id": new_id})

    def events(self, *, org: str = DEFAULT_ORG, machine_id: str | None = None, limit: int = 100,
               since: datetime | None = None) -> list[Event]:
        sql = "SELECT id, body FROM events WHERE org = ?"
        params: list[Any] = [org]
        if machine_id is not None:
            sql += " AND machine_id = ?"
            params.append(machine_id)
        if since is not None:
            sql += " AND at >= ?"
            params.append(epoch(since))
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(max(0, int(limit)))
        with self._transaction(write=False) as tx:
            rows = tx.all(sql, params)
        return [self._event(r) for r in rows]

    @staticmethod
    def _event(row: tuple) -> Event:
        event = Event.model_validate_json(row[1])
        event.id = row[0]
        return event

    def pending_notifications(self, *, limit: int = 100) -> list[Event]:
        with self._transaction(write=False) as tx:
            rows = tx.all("SELECT id, body FROM events WHERE notified_at IS NULL ORDER BY id LIMIT ?",
                          (max(0, int(limit)),))
        return [self._event(r) for r in rows]

    def mark_notified(self, event_ids: list[int]) -> None:
        ids = [int(i) for i in event_ids]
        if not ids:
            return
        with self._transaction(write=True) as tx:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                tx.run(
                    f"UPDATE events SET notified_at = ? WHERE notified_at IS NULL "
                    f"AND id IN ({', '.join('?' for _ in chunk)})",
                    (time.time(), *chunk),
                )

    def iter_events(self) -> Iterator[tuple[Event, bool]]:
        last = 0
        while True:
            with self._transaction(write=False) as tx:
                rows = tx.all(
                    f"SELECT id, body, notified_at FROM events WHERE id > ? ORDER BY id LIMIT {PAGE}",
                    (last,),
                )
            for row in rows:
                yield self._event(row), row[2] is not None
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def import_event(self, event: Event, notified: bool) -> bool:
        body = event.model_dump_json(exclude={"id"})
        with self._transaction(write=False) as tx:
            same = tx.all("SELECT body FROM events WHERE org = ? AND machine_id = ? AND at = ?",
                          (event.org, event.machine_id, epoch(event.at)))
        if any(Event.model_validate_json(b) == Event.model_validate_json(body) for (b,) in same):
            return False
        self._insert_event(event, notified)
        return True

    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        with self._transaction(write=True) as tx:
            (new_id,) = tx.one("INSERT INTO audit (org, at, body) VALUES (?, ?, ?) RETURNING id",
                               (entry.org, epoch(entry.at), entry.model_dump_json(exclude={"id"})))
        return entry.model_copy(update={"id": new_id})

    def audit(self, *, org: str = DEFAULT_ORG, limit: int = 100) -> list[AuditEntry]:
        with self._transaction(write=False) as tx:
            rows = tx.all("SELECT id, body FROM audit WHERE org = ? ORDER BY at DESC, id DESC LIMIT ?",
                          (org, max(0, int(limit))))
        return [self._audit(r) for r in rows]

    @staticmethod
    def _audit(row: tuple) -> AuditEntry:
        entry = AuditEntry.model_validate_json(row[1])
        entry.id = row[0]
        return entry

    def iter_audit(self) -> Iterator[AuditEntry]:
        last = 0
        while True:
            with self._transaction(write=False) as tx:
                rows = tx.all(f"SELECT id, body FROM audit WHERE id > ? ORDER BY id LIMIT {PAGE}", (last,))
            for row in rows:
                yield self._audit(row)
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def import_audit(self, entry: AuditEntry) -> bool:
        probe = entry.model_copy(update={"id": None})
        with self._transaction(write=False) as tx:
            same = tx.all("SELECT body FROM audit WHERE org = ? AND at = ?", (entry.org, epoch(entry.at)))
        if any(AuditEntry.model_validate_json(b) == probe for (b,) in same):
            return False
        self.add_audit(probe)
        return True

    # --- small shared state --------------------------------------------------------------------

    def kv_get(self, namespace: str, key: str, *, org: str = DEFAULT_ORG) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT value FROM kv WHERE org = ? AND namespace = ? AND key = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (org, namespace, key, time.time()),
        )
        return json.loads(rows[0][0]) if rows else None

    def kv_get_many(self, namespace: str, keys: Iterable[str], *,
                    org: str = DEFAULT_ORG) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        if not wanted:
            return found
        now = time.time()
        for start in range(0, len(wanted), PAGE):  # each key is read once: no snapshot needed
            chunk = wanted[start:start + PAGE]
            for key, value in self._read(
                f"SELECT key, value FROM kv WHERE org = ? AND namespace = ? AND key IN "
                f"({', '.join('?' for _ in chunk)}) AND (expires_at IS NULL OR expires_at > ?)",
                (org, namespace, *chunk, now),
            ):
                found[key] = json.loads(value)
        return found

    def kv_put(self, namespace: str, key: str, value: dict[str, Any], *, org: str = DEFAULT_ORG,
               expires_at: datetime | None = None) -> None:
        with self._transaction(write=True) as tx:
            tx.run(
                "INSERT INTO kv (org, namespace, key, value, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (org, namespace, key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at",
                (org, namespace, key, json.dumps(value),
                 epoch(expires_at) if expires_at is not None else None),
            )

    def kv_add(self, namespace: str, key: str, value: dict[str, Any], *, org: str = DEFAULT_ORG,
               expires_at: datetime | None = None) -> bool:
        """One statement: insert, or take over an expired value; a live one is left as it is."""
        with self._transaction(write=True) as tx:
            row = tx.one(
                "INSERT INTO kv (org, namespace, key, value, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (org, namespace, key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at "
                "WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ? RETURNING 1",
                (org, namespace, key, json.dumps(value),
                 epoch(expires_at) if expires_at is not None else None, time.time()),
            )
        return row is not None

    def kv_delete(self, namespace: str, key: str, *, org: str = DEFAULT_ORG) -> bool:
        with self._transaction(write=True) as tx:
            row = tx.one("DELETE FROM kv WHERE org = ? AND namespace = ? AND key = ? RETURNING expires_at",
                         (org, namespace, key))
        return row is not None and (row[0] is None or row[0] > time.time())

    def kv_list(self, namespace: str, *, org: str = DEFAULT_ORG) -> dict[str, dict[str, Any]]:
        rows = self._read(
            "SELECT key, value FROM kv WHERE org = ? AND namespace = ? "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY key",
            (org, namespace, time.time()),
        )
        return {key: json.loads(value) for key, value in rows}

    def iter_kv(self) -> Iterator[tuple[str, str, str, dict[str, Any], datetime | None]]:
        with self._transaction(write=False) as tx:
            rows = tx.all("SELECT org, namespace, key, value, expires_at FROM kv "
                          "WHERE expires_at IS NULL OR expires_at > ? ORDER BY org, namespace, key",
                          (time.time(),))
        for org, namespace, key, value, expires in rows:
            yield org, namespace, key, json.loads(value), from_epoch(expires) if expires is not None else None

    def incr(self, namespace: str, key: str, *, org: str = DEFAULT_ORG, expires_at: datetime) -> int:
        now = time.time()
        with self._transaction(write=True) as tx:
            (count,) = tx.one(
                """INSERT INTO counters (org, namespace, key, count, expires_at) VALUES (?, ?, ?, 1, ?)
                   ON CONFLICT (org, namespace, key) DO UPDATE SET
                   count = CASE WHEN counters.expires_at <= ? THEN 1 ELSE counters.count + 1 END,
                   expires_at = CASE WHEN counters.expires_at <= ? THEN excluded.expires_at
                                     ELSE counters.expires_at END
                   RETURNING count""",
                (org, namespace, key, epoch(expires_at), now, now),
            )
        return int(count)

    def try_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._transaction(write=True) as tx:
            row = tx.one(
                """INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                   expires_at = excluded.expires_at
                   WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
                   RETURNING holder""",
                (name, holder, now + float(ttl_seconds), now),
            )
        return row is not None

    # --- upkeep --------------------------------------------------------------------------------

    def purge(self, before: datetime) -> int:
        cutoff = epoch(before)
        deleted = 0
        for table, column in (("samples", "collected_at"), ("events", "at")):
            while True:
                with self._transaction(write=True) as tx:
                    n = tx.run(
                        f"DELETE FROM {table} WHERE id IN "
                        f"(SELECT id FROM {table} WHERE {column} < ? LIMIT {PURGE_CHUNK})",
                        (cutoff,),
                    )
                deleted += max(n, 0)
                if n < PURGE_CHUNK:
                    break
        edge = int(cutoff // SLOT)  # the slot holding the cutoff lost some samples: recompute it
        with self._transaction(write=True) as tx:
            tx.run("DELETE FROM rollups WHERE slot <= ?", (edge,))
            tx.run(rollup_insert_select(self.dialect, "s.collected_at >= ? AND s.collected_at < ?"),
                   (edge * SLOT, (edge + 1) * SLOT))
        now = time.time()
        with self._transaction(write=True) as tx:
            tx.run("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
            tx.run("DELETE FROM counters WHERE expires_at <= ?", (now,))
            tx.run("DELETE FROM leases WHERE expires_at <= ?", (now,))
        return deleted

    def counts(self) -> dict[str, int]:
        with self._transaction(write=False) as tx:
            return {
                table: tx.one(f"SELECT count(*) FROM {table}")[0]
                for table in ("machines", "samples", "events", "audit", "kv")
            }
