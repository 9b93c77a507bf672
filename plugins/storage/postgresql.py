"""PostgreSQL storage (`postgresql://user@host:port/db`): for several server processes or machines.

Everything shared between server processes (idempotency, counters, one-time tokens, leases) is a
single statement in the database, so it holds whatever process or machine runs it. Connections come
from a psycopg_pool pool; psycopg is imported only when this backend is opened, so a plain install
(without the `postgresql` extra) never needs it.

URL: any libpq URI (`postgresql://user:password@host:5432/db?sslmode=require`, or with
`options=-csearch_path%3Dschema` to use a schema), plus two options of ours that are taken out
before the URL reaches libpq: `pool_min` (default 1) and `pool_max` (default 10).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dashfleet_core import hookimpl
from dashfleet_core.storage import StorageError, redact_url

from ._sql import POSTGRESQL, SAMPLE_COLUMNS, SqlStorage, Tx

MIGRATION_LOCK = 0x64617368  # pg_advisory_xact_lock key: one process migrates the schema at a time
INSTALL_HINT = "pip install 'dashfleet[postgresql]'"


def split_url(url: str) -> tuple[str, dict[str, int]]:
    """The libpq URL (scheme `postgresql`) and our pool options taken out of its query string."""
    parts = urlsplit(url)
    ours: dict[str, int] = {}
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("pool_min", "pool_max"):
            try:
                ours[key] = int(value)
            except ValueError:
                raise StorageError(f"storage URL {redact_url(url)!r}: {key} must be a whole number") from None
        else:
            kept.append((key, value))
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), parts.fragment))
    return conninfo, ours


class PostgresStorage(SqlStorage):
    scheme = "postgresql"
    dialect = POSTGRESQL

    def __init__(self, url: str, settings=None) -> None:
        super().__init__()
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StorageError(
                f"storage URL {redact_url(url)!r} needs the PostgreSQL driver: {INSTALL_HINT}"
            ) from None
        self._psycopg = psycopg
        self._url = redact_url(url)
        conninfo, options = split_url(url)
        self._conninfo = conninfo
        lo = max(0, options.get("pool_min", 1))
        hi = max(1, lo, options.get("pool_max", 10))
        self._new_pool = lambda: ConnectionPool(conninfo, min_size=lo, max_size=hi, open=False,
                                                name="dashfleet", kwargs={"connect_timeout": 10})
        self._fork_lock = threading.Lock()
        self._open_pool()
        try:
            self._migrate()
        except Exception:
            self._pool.close()
            raise

    def _open_pool(self) -> None:
        self._pool = self._new_pool()
        self._pid = os.getpid()
        try:
            # one direct connection first: fails at once with libpq's reason (the pool would retry)
            self._psycopg.connect(self._conninfo, connect_timeout=10).close()
            self._pool.open(wait=True, timeout=15)
        except Exception as exc:
            self._pool.close()
            raise StorageError(
                f"cannot connect to PostgreSQL at {self._url}: {exc}; check that the server runs and "
                f"the URL (user, password, host, port, database) is right"
            ) from None

    def _where(self) -> str:
        return self._url

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        if self._pid != os.getpid():  # forked after opening (gunicorn --preload): the parent's
            with self._fork_lock:     # pool threads and connections are not ours to use
                if self._pid != os.getpid():
                    self._open_pool()
        with self._pool.connection() as conn:  # commits on success, rolls back on an exception
            with conn.cursor() as cur:
                yield Tx(cur, convert=True)

    def _lock_for_migration(self, tx: Tx) -> None:
        tx.one("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def bulk_insert_samples(self, rows: list[tuple]) -> None:
        """COPY raw `samples` rows (columns as `SAMPLE_COLUMNS`), for benchmarks only."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            with cur.copy(f"COPY samples ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def analyze(self) -> None:
        """Refresh the planner's statistics, e.g. after a bulk load (autovacuum does it in time;
        until then a chart query may be planned as if the tables were empty)."""
        with self._pool.connection() as conn:
            conn.execute("ANALYZE")

    def close(self) -> None:
        self._pool.close()


def open_postgresql(url: str, settings=None) -> PostgresStorage:
    return PostgresStorage(url, settings)


@hookimpl
def register_storage(register):
    register("postgresql", open_postgresql)
