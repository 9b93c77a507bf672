"""Turn SIGTERM / SIGINT (and, on Windows, Ctrl+Break and console close) into a stop event."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Within the block, the stop signals set the yielded event instead of killing the process."""
    stop = threading.Event()
    names = ["SIGTERM", "SIGINT", "SIGBREAK", "SIGHUP"]
    previous = {}

    def handler(signum, frame):
        stop.set()

    for name in names:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread, or not settable on this platform
            pass
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
