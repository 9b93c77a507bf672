"""SQLite storage (`sqlite:///data/dashfleet.db`, the default): one file, WAL, durable commits.

Several processes on one machine (gunicorn workers, the CLI) may use the same file: every write is a
short `BEGIN IMMEDIATE` transaction (so two writers queue on the busy timeout instead of failing on a
lock upgrade), and idempotency, counters and leases are enforced by the database. Each thread gets
its own connection, because Flask serves requests on threads, and a process forked after opening
(gunicorn `--preload`) opens its own instead of sharing its parent's.

URL options (query string): `synchronous=full|normal` (default `full`: a commit is on disk when
`save_report` returns; `normal` is faster but a power cut may lose the last commits — a killed
process never does), `busy_timeout` in seconds (default 30).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs

from dashfleet_core import hookimpl
from dashfleet_core.private_files import private_file, private_folder, tighten
from dashfleet_core.storage import StorageError, StorageFull, url_path

from ._sql import SAMPLE_COLUMNS, SQLITE, SqlStorage, Tx

try:
    import fcntl
except ImportError:  # Windows: waitress serves from one process, whose threads queue on a lock
    fcntl = None

# A checkpoint copies each page changed since the last one back into the database once, however
# often it changed: at SQLite's default of 1,000 pages, a busy server rewrote the same hot pages
# (machines, rollups, index leaves) every ~150 commits. 10,000 pages (40 MB of WAL at most between
# checkpoints) measured 1.13x single-report and 1.3x batched throughput (docs/benchmarks.md).
WAL_AUTOCHECKPOINT_PAGES = 10_000
WAL_SIZE_LIMIT_BYTES = 64 * 2**20  # the WAL file is truncated back to this after a checkpoint
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "extra": "EXTRA"}


class SqliteStorage(SqlStorage):
    scheme = "sqlite"
    dialect = SQLITE

    def __init__(self, url: str, settings=None) -> None:
        super().__init__()
        path_part, _, query = url.partition("?")
        options = {k: v[-1] for k, v in parse_qs(query).items()}
        self.path = Path(url_path(path_part))
        sync = options.get("synchronous", "full").lower()
        if sync not in SYNCHRONOUS:
            raise StorageError(f"storage URL {url!r}: synchronous={sync!r}; use one of: {', '.join(SYNCHRONOUS)}")
        self._synchronous = SYNCHRONOUS[sync]
        try:
            self._busy_ms = int(float(options.get("busy_timeout", 30)) * 1000)
        except ValueError:
            raise StorageError(f"storage URL {url!r}: busy_timeout must be a number of seconds") from None
        try:
            private_folder(self.path.parent)
            private_file(self.path)  # SQLite gives the -wal and -shm files the database's mode
            for extra in ("-wal", "-shm"):
                tighten(Path(f"{self.path}{extra}"))
        except OSError as exc:
            raise StorageError(f"cannot create the SQLite database {self.path} or its folder: {exc}") from None
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock_fds: list[int] = []  # see `_writer_turn`
        self._thread_writer = threading.Lock()
        self._all_lock = threading.Lock()
        self._closed = False
        try:
            mode = self._enter_wal_mode()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StorageError(
                f"{self.path} is not a usable SQLite database ({exc}); move it aside to start with an "
                f"empty one, or restore a backup"
            ) from None
        if str(mode).lower() != "wal":
            raise StorageError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); put the database "
                               f"on a local disk, not a network share")
        self._migrate()

    def _where(self) -> str:
        return str(self.path)

    def _enter_wal_mode(self) -> str:
        """Switch a new database to WAL (a no-op once it is). Processes starting together (gunicorn
        workers on a fresh file) take turns on the writer lock: SQLite answers a concurrent switch
        with "database is locked" at once, without waiting on the busy timeout."""
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                with self._writer_turn():
                    return self._connection().execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # a reader without the writer lock (an older DashFleet, the CLI)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"{self.path}: storage is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid != os.getpid():
            conn = None  # inherited through fork (gunicorn --preload): never reuse it in a child
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            self._local.conn = conn
            self._local.pid = os.getpid()
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _read(self, sql: str, params=()) -> list[tuple]:
        """One statement in autocommit mode: SQLite wraps it in its own read transaction."""
        return self._connection().execute(sql, tuple(params)).fetchall()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        conn = self._connection()
        with self._writer_turn() if write else nullcontext():
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Tx(conn, convert=False)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:  # SQLite may have rolled back already (a full disk does)
                    conn.execute("ROLLBACK")
                if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                    raise StorageFull(self.path) from exc
                raise

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Writers of this database (every thread and process here) queue on a file lock next to
        it, and the kernel wakes the next one as soon as a commit is done. Left to SQLite, a
        writer that finds the database locked sleeps 1, 2, 5, 10... ms between tries: with two
        gunicorn workers, most of the time of a short commit. A writer that does not take this
        lock (an older DashFleet) still queues on the busy timeout."""
        if fcntl is None:
            with self._thread_writer:
                yield
            return
        fd = getattr(self._local, "lock_fd", None)
        if fd is None or self._local.lock_pid != os.getpid():
            fd = os.open(f"{self.path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
            self._local.lock_fd, self._local.lock_pid = fd, os.getpid()
            with self._all_lock:
                self._lock_fds.append(fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def bulk_insert_samples(self, rows: list[tuple]) -> None:
        """Insert raw `samples` rows (columns as `SAMPLE_COLUMNS`), for benchmarks only."""
        marks = ", ".join("?" for _ in SAMPLE_COLUMNS)
        with self._transaction(write=True) as tx:
            tx.many(f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}) VALUES ({marks})", rows)

    def integrity_check(self) -> str:
        return self._connection().execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
            fds, self._lock_fds = self._lock_fds, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._local = threading.local()


def open_sqlite(url: str, settings=None) -> SqliteStorage:
    return SqliteStorage(url, settings)


@hookimpl
def register_storage(register):
    register("sqlite", open_sqlite)

