"""Between the engine and the window: the engine's scheduler does the work, the Tk thread only
takes finished results from a queue (`drain`, called from `after()`), so no other thread ever
touches Tk. The queue is a deque: appending and popping are atomic, with no lock or condition to
take on either side (the window never waits on it).

The collection runs every interval as a `serial` job (never two at once); other work (an action,
which may take up to its time limit) runs as a one-off job on the scheduler's pool, so neither
blocks the window.
"""

from __future__ import annotations

import logging
import os
from collections import deque
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dashfleet_core.engine import Engine, default_machine_id

log = logging.getLogger(__name__)


_UNREAD = object()


@dataclass
class Message:
    """One result for the window: `kind` is `snapshot`, `agent` or the name given to `submit`."""

    kind: str
    value: Any = None
    error: BaseException | None = None
    at: float = field(default_factory=time.monotonic)   # when it was queued


class Feed:
    def __init__(self, engine: Engine, interval: float, status_path: Path | None = None,
                 read_status: Callable[[Path], Any] | None = None) -> None:
        self.engine = engine
        self.interval = interval
        self.status_path = status_path
        self._read_status = read_status
        self.machine_id = default_machine_id()
        self._seq = 0
        self._queue: deque[Message] = deque()
        self._started = False
        self._status_seen: Any = _UNREAD   # the status file as last read: (inode, size, mtime) or None

    def start(self) -> None:
        self.engine.startup()
        self.engine.every(self.interval, self._collect, job_id="desktop-collect", serial=True)
        self.engine.start()
        self._started = True

    def _collect(self) -> None:
        self._seq += 1
        try:
            report, health = self.engine.cycle(self.machine_id, self._seq)
            self._queue.append(Message("snapshot", (report, health)))
        except Exception as exc:
            log.exception("collection failed")
            self._queue.append(Message("snapshot", error=exc))
        if self.status_path is not None and self._read_status is not None:
            self._check_status(self.status_path, self._read_status)

    def _check_status(self, path: Path, read: Callable[[Path], Any]) -> None:
        """Read the agent's status file when it changed since the last read (the agent replaces
        it every interval, the window refreshes more often): a message only when there is news."""
        try:
            st = os.stat(path)
            seen: Any = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        except OSError:  # let the reader say what is wrong
            seen = _UNREAD
        if seen is not _UNREAD and seen == self._status_seen:
            return
        try:
            self._queue.append(Message("agent", read(path)))
            self._status_seen = seen
        except Exception as exc:  # unreadable or not a status file: shown, not fatal, read again next time
            self._queue.append(Message("agent", error=exc))
            self._status_seen = _UNREAD

    def submit(self, kind: str, func: Callable[[], Any]) -> None:
        """Run `func` once on the scheduler's pool; its result (or exception) arrives as `kind`."""

        def job() -> None:
            try:
                self._queue.append(Message(kind, func()))
            except Exception as exc:
                log.exception("%s failed", kind)
                self._queue.append(Message(kind, error=exc))

        self.engine.later(0, job, job_id=f"desktop-{kind}")

    def drain(self) -> list[Message]:
        """Every result waiting, oldest first, without blocking."""
        out: list[Message] = []
        pending = self._queue
        while pending:
            out.append(pending.popleft())
        return out

    def stop(self) -> None:
        """Stop the scheduler (waiting for the job in progress) and tell plugins the host stops."""
        if not self._started:
            return
        self._started = False
        self.engine.stop()
        self.engine.shutdown()
