"""The on-disk spool: every report is written here first and removed only once the server
acknowledged it.

One SQLite file (`<state>/spool.db`) holds the queue and the agent's counters. SQLite gives what a
spool needs without hand-rolled file juggling: a report and the next `seq` are committed in one
transaction (a crash never leaves a half-written report or a reused `seq`), and reading the oldest
N rows streams from disk, so memory does not grow with the backlog. WAL mode lets
`dashfleet agent status` read while the agent writes.

Bounds: at most `max_bytes` of queued report bodies and nothing older than `max_age` seconds; the
oldest reports are dropped first and counted (`dropped_total`), and every new report carries that
count as `spool_dropped` so the server knows what it missed.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

SPOOL_FILE = "spool.db"
LOCK_FILE = "agent.lock"
DEAD_LETTER_FILE = "dead-letter.jsonl"
DEAD_LETTER_MAX_BYTES = 10 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY,
    enqueued_at REAL NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_enqueued_at ON queue (enqueued_at);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SpoolError(Exception):
    """The spool cannot be used (disk full, unreadable file, another agent holds it)."""


@dataclass
class Item:
    seq: int
    body: bytes


class Spool:
    """The queue of undelivered reports plus the agent's persistent counters."""

    def __init__(self, state_dir: Path, *, max_bytes: int = 50 * 1024 * 1024,
                 max_age: float = 24 * 3600.0, readonly: bool = False):
        self.path = Path(state_dir) / SPOOL_FILE
        self.dead_letter_path = Path(state_dir) / DEAD_LETTER_FILE
        self.max_bytes = max_bytes
        self.max_age = max_age
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10,
                                           isolation_level=None, check_same_thread=False)
            else:
                # One thread at a time uses the spool; it may not be the thread that opened it.
                self._db = sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                                           check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: a report the agent counted as spooled survives a power cut, not only a crash.
                self._db.execute("PRAGMA synchronous=FULL")
                # The queue is read front to back: a small page cache (1 MB) is enough, and it
                # bounds what a long backlog can add to the agent's memory.
                self._db.execute("PRAGMA cache_size=-1024")
                self._db.executescript(_SCHEMA)
                if os.name == "posix":
                    os.chmod(self.path, 0o600)
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot open the spool: {exc}") from None

    def close(self) -> None:
        self._db.close()

    # --- counters ------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        self._set(key, value)

    def _set(self, key: str, value: Any) -> None:
        self._db.execute("INSERT INTO state(key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def next_seq(self) -> int:
        """The seq the next report will get. A new spool starts at the current time in
        milliseconds, so an agent whose state folder was wiped still numbers above everything it
        sent before (the server would otherwise acknowledge the new reports as duplicates)."""
        seq = self.get("next_seq")
        if seq is None:
            seq = int(time.time() * 1000)
            self.set("next_seq", seq)
        return int(seq)

    @property
    def dropped_total(self) -> int:
        return int(self.get("dropped_total", 0))

    # --- queue ---------------------------------------------------------------------------------

    def put(self, seq: int, build: Callable[[int], bytes]) -> int:
        """Spool the report numbered `seq` (which must be `next_seq()`); `build(dropped_total)`
        returns its JSON body. Enforces the bounds first. Returns how many old reports were dropped."""
        try:
            with self._txn():
                expected = self.next_seq()
                if seq != expected:
                    raise SpoolError(f"seq {seq} is not the next one ({expected}); is another agent "
                                     "using this state folder?")
                dropped = self._enforce_age(time.time())
                # Drop to the byte bound with the new report's size in mind; its size depends on
                # the dropped count only by a few digits, so build once, then check.
                dropped_total = self.dropped_total + dropped
                body = build(dropped_total)
                over = self._bytes() + len(body) - self.max_bytes
                if over > 0:
                    n = self._drop_oldest_bytes(over)
                    if n:
                        dropped += n
                        dropped_total += n
                        body = build(dropped_total)
                if dropped:
                    self._set("dropped_total", dropped_total)
                self._db.execute("INSERT INTO queue(seq, enqueued_at, size, body) VALUES (?, ?, ?, ?)",
                                 (seq, time.time(), len(body), body))
                self._set("bytes", self._bytes() + len(body))
                self._set("next_seq", seq + 1)
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot write to the spool: {exc}") from None
        if dropped:
            log.warning("spool full (%d bytes max, %.0f h max): dropped the %d oldest undelivered "
                        "report(s); %d dropped in total", self.max_bytes, self.max_age / 3600,
                        dropped, dropped_total)
        return dropped

    def peek(self, limit: int) -> list[Item]:
        """The oldest `limit` reports, oldest first (read from disk, never the whole queue)."""
        rows = self._db.execute("SELECT seq, body FROM queue ORDER BY seq LIMIT ?", (limit,))
        return [Item(seq, bytes(body)) for seq, body in rows]

    def ack(self, seqs: list[int], **state: Any) -> None:
        """Remove delivered (or dead-lettered) reports and record `state` counters, in one commit."""
        if not seqs and not state:
            return
        try:
            with self._txn():
                freed = 0
                for start in range(0, len(seqs), 500):
                    chunk = seqs[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    row = self._db.execute(f"SELECT coalesce(sum(size), 0) FROM queue WHERE seq IN ({marks})",
                                           chunk).fetchone()
                    freed += row[0]
                    self._db.execute(f"DELETE FROM queue WHERE seq IN ({marks})", chunk)
                self._set("bytes", max(0, self._bytes() - freed))
                for key, value in state.items():
                    self._set(key, value)
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot update the spool: {exc}") from None

    def renumber(self, from_seq: int, start: int, rebuild: Callable[[bytes, int], bytes]) -> tuple[int, int]:
        """Give the report `from_seq` and every queued report after it the numbers `start`,
        `start + 1`, ... in order (`rebuild(body, seq)` rewrites a body), move `next_seq` past them
        and count it (`renumbered_total`, `last_renumbering`), all in one commit. For a seq the
        server holds with other content. Returns (how many were renumbered, the old seq of the last one)."""
        if start <= 0:
            raise ValueError("seqs are positive")
        try:
            with self._txn():
                # Negative first, so no new number collides with an old one still in the table.
                self._db.execute("UPDATE queue SET seq = -seq WHERE seq >= ?", (from_seq,))
                count = delta = 0
                last_old = from_seq
                while True:  # a chunk at a time: the backlog is not read into memory at once
                    rows = self._db.execute("SELECT seq, body FROM queue WHERE seq < 0 ORDER BY seq DESC "
                                            "LIMIT 256").fetchall()
                    if not rows:
                        break
                    for negative, body in rows:
                        new_body = rebuild(bytes(body), start + count)
                        self._db.execute("UPDATE queue SET seq = ?, body = ?, size = ? WHERE seq = ?",
                                         (start + count, new_body, len(new_body), negative))
                        delta += len(new_body) - len(body)
                        last_old = -negative
                        count += 1
                self._set("bytes", max(0, self._bytes() + delta))
                self._set("next_seq", max(self.next_seq(), start + count))
                self._set("renumbered_total", int(self.get("renumbered_total", 0)) + 1)
                self._set("last_renumbering", {"at": time.time(), "from_seq": from_seq, "to_seq": start,
                                               "count": count})
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot renumber the spool: {exc}") from None
        return count, last_old

    def table_missing(self) -> bool:
        """True while a new spool file has no schema yet (seen by a reader racing the agent's start)."""
        row = self._db.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('queue', 'state')").fetchone()
        return row[0] < 2

    def depth(self) -> int:
        return self._db.execute("SELECT count(*) FROM queue").fetchone()[0]

    def oldest_enqueued_at(self) -> float | None:
        row = self._db.execute("SELECT enqueued_at FROM queue ORDER BY seq LIMIT 1").fetchone()
        return row[0] if row else None

    def bytes_queued(self) -> int:
        return self._bytes()

    def dead_letter(self, item: Item, status: int | None, error: str, fields: list[str] | None = None) -> None:
        """Keep a report the server rejected as invalid, with the reason, out of the queue."""
        try:
            report = json.loads(item.body)
        except ValueError:
            report = item.body.decode("utf-8", "replace")
        line = json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seq": item.seq,
                           "status": status, "error": error, "fields": fields or [], "report": report})
        path = self.dead_letter_path
        if path.exists() and path.stat().st_size > DEAD_LETTER_MAX_BYTES:
            os.replace(path, path.with_suffix(".jsonl.1"))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.set("dead_lettered_total", int(self.get("dead_lettered_total", 0)) + 1)

    # --- internals -----------------------------------------------------------------------------

    def _bytes(self) -> int:
        return int(self.get("bytes", 0))

    def _enforce_age(self, now: float) -> int:
        cutoff = now - self.max_age
        row = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM queue WHERE enqueued_at < ?",
                               (cutoff,)).fetchone()
        if row[0]:
            self._db.execute("DELETE FROM queue WHERE enqueued_at < ?", (cutoff,))
            self._set("bytes", max(0, self._bytes() - row[1]))
        return row[0]

    def _drop_oldest_bytes(self, need: int) -> int:
        freed = count = 0
        last = None
        cur = self._db.execute("SELECT seq, size FROM queue ORDER BY seq")
        try:
            while freed < need:
                rows = cur.fetchmany(256)
                if not rows:
                    break
                for seq, size in rows:
                    freed += size
                    count += 1
                    last = seq
                    if freed >= need:
                        break
        finally:
            cur.close()
        if last is not None:
            self._db.execute("DELETE FROM queue WHERE seq <= ?", (last,))
            self._set("bytes", max(0, self._bytes() - freed))
        return count

    def _txn(self):
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
        return False


class StateLock:
    """One agent per state folder: two would hand out the same seq twice."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK_FILE
        self._fh = None

    def acquire(self) -> None:
        fh = open(self.path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise SpoolError(f"{self.path}: another dashfleet agent is running with this state folder; "
                             "stop it, or give this one its own --state-dir") from None
        if os.name != "nt":  # the pid is for people; Windows forbids writing over the locked byte
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
