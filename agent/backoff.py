"""Retry delays: exponential backoff with jitter, and the server's `Retry-After`.

Jitter spreads the retries of hundreds of agents that lost the server at the same moment, so
they do not all come back in the same second.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

# A Retry-After longer than this is treated as this: a misconfigured proxy (or one answering for
# the server) must not silence the agent for hours.
MAX_RETRY_AFTER = 300.0


class Backoff:
    """1 s, 2 s, 4 s, ... capped at `cap`; each delay drawn uniformly from [d/2, d]."""

    def __init__(self, base: float = 1.0, cap: float = 30.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def nominal(self) -> float:
        """The un-jittered delay for the next retry."""
        return min(self.cap, self.base * (2 ** min(self.failures, 62)))

    def next_delay(self) -> float:
        delay = self.nominal()
        self.failures += 1
        return self._rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.failures = 0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
