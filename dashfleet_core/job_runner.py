"""Which process of a host runs the fleet's scheduled jobs.

Under gunicorn every worker builds a `Fleet`. Leases in storage already make each job run once per
deployment, but a scheduler in every worker costs each of them APScheduler's imports, a thread
pool, SQLite connections of its own and a lease write per job and interval. So the processes of
one host serving one storage take a file lock first: the holder runs the scheduler, the others
try again every few seconds and take over when the holder exits (the kernel drops a `flock` with
its process, even after SIGKILL). Leases still decide between hosts sharing one PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # Windows: one process (waitress), and leases decide between servers
    fcntl = None

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0


def lock_path(data_dir: str | os.PathLike, storage_url: str) -> Path:
    """One lock per data folder and storage: servers of two storages never share a lock."""
    digest = hashlib.sha256(storage_url.encode()).hexdigest()[:12]
    return Path(data_dir) / f"jobs-{digest}.lock"


class JobRunnerLock:
    """The right to run the scheduled jobs on this host, taken now or as soon as it is free."""

    def __init__(self, path: Path, retry_seconds: float = RETRY_SECONDS) -> None:
        self.path = path
        self.retry_seconds = retry_seconds
        self._fd: int | None = None
        self._held = False
        self._stopped = threading.Event()
        self._waiter: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._held

    def run_when_held(self, start: Callable[[], None]) -> bool:
        """Call `start` once the lock is held: now (returns True) or later, from a thread that
        retries every `retry_seconds` until it gets the lock or `release` is called."""
        if self._try():
            start()
            return True
        log.info("another process of this host runs the scheduled jobs (%s); this one takes over "
                 "if it stops", self.path)

        def wait() -> None:
            while not self._stopped.wait(self.retry_seconds):
                if self._try():
                    log.info("this process now runs the scheduled jobs (%s)", self.path)
                    start()
                    return

        self._waiter = threading.Thread(target=wait, name="dashfleet-job-runner-lock", daemon=True)
        self._waiter.start()
        return False

    def release(self) -> None:
        """Stop waiting and give the lock back (another process of the host takes it over)."""
        self._stopped.set()
        if self._waiter is not None and self._waiter is not threading.current_thread():
            self._waiter.join()
        self._waiter = None
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
        self._held = False

    def _try(self) -> bool:
        if self._stopped.is_set():
            return False
        if fcntl is None:
            self._held = True
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # a read-only data folder: run the jobs here, leases keep them single
            log.warning("cannot open the job-runner lock %s (%s); this process runs the scheduled "
                        "jobs, and storage leases keep each run to one process", self.path, exc)
            self._held = True
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd, self._held = fd, True
        return True
