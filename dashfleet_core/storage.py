"""The storage contract every backend implements, and `open_storage` to pick one by URL.

A backend is a plugin that registers a URL scheme (`register_storage`). Every row belongs to an
organisation (`org`, `DEFAULT_ORG` until tenants exist), and every method takes it, so no query can
forget the scope. Times are timezone-aware UTC datetimes.

The contract's tests ship as `dashfleet_core.testing.StorageContract`, so every backend (the
built-in ones in `tests/test_storage_contract.py`, a third party's in its own tests) runs the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Collection, Iterable, Iterator
import re
from urllib.parse import urlsplit

from .config import ConfigError, Settings
from .models import DEFAULT_ORG, AuditEntry, Bucket, Event, Health, MachineState, Report, Sample


class StorageError(ConfigError):
    """Storage cannot be used as it is; the message says what is wrong and how to recover.

    A ConfigError, so every host that reports configuration problems at start-up (the CLI's
    `main`: "dashfleet: <message>") reports this one the same way instead of a traceback."""

    exit_code = 1


class StorageFull(StorageError):
    """A write did not fit on the disk: nothing of it was stored (the transaction was undone),
    what was stored before is intact, and the same write succeeds once there is room."""

    def __init__(self, where: object) -> None:
        super().__init__(f"{where}: the disk is full; nothing of this write was stored. Free space "
                         f"on that disk; the same write then succeeds")


@dataclass
class StoredReport:
    """A report as it was stored, for export and migration."""

    org: str
    report: Report
    health: Health
    received_at: datetime


class Storage(ABC):
    """What the server, the CLI and the jobs need from a backend."""

    scheme: str = ""

    # --- reports -------------------------------------------------------------------------------

    @abstractmethod
    def save_report(
        self, report: Report, health: Health, *, org: str = DEFAULT_ORG,
        received_at: datetime | None = None,
    ) -> bool:
        """Store one report durably and update the machine's latest state.

        Returns True when stored, False when `(org, machine_id, seq)` was already stored (the
        duplicate is acknowledged, not stored twice). A report without `seq` is always stored.
        When this returns, the report survives a crash of the process.
        """

    def save_reports(
        self, items: list[tuple[Report, Health]], *, org: str = DEFAULT_ORG,
        received_at: datetime | None = None, by_seq: Collection[str] = (),
    ) -> list[bool]:
        """Store several reports (an agent's batch); one result per item, as `save_report`.

        A machine's latest state follows the report stored last, except for the machines named in
        `by_seq` (their reports carry a verified machine key, so their `seq` can be trusted): their
        state follows the highest `seq`. A report without `seq` is a duplicate of a stored one
        with the same content (`report_digest`). Backends override this to commit the batch at
        once; this fallback stores one by one and cannot order by seq.
        """
        return [self.save_report(r, h, org=org, received_at=received_at) for r, h in items]

    def stored_report(self, machine_id: str, seq: int, *, org: str = DEFAULT_ORG) -> Report | None:
        """The report stored under `(org, machine_id, seq)`, or None: a report arriving again
        under that seq is a duplicate only if its content is the same (else a conflict)."""
        for stored in self.iter_reports(org=org, machine_id=machine_id):
            if stored.report.seq == seq:
                return stored.report
        return None

    def max_seq(self, machine_id: str, *, org: str = DEFAULT_ORG) -> int | None:
        """The highest `seq` stored for a machine (what an agent renumbers after on a conflict)."""
        seqs = [s.report.seq for s in self.iter_reports(org=org, machine_id=machine_id)
                if s.report.seq is not None]
        return max(seqs, default=None)

    @abstractmethod
    def iter_reports(
        self, *, org: str | None = None, machine_id: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
    ) -> Iterator[StoredReport]:
        """Every stored report matching the filters, oldest first (`org=None`: all organisations)."""

    # --- fleet ---------------------------------------------------------------------------------

    @abstractmethod
    def machines(self, *, org: str = DEFAULT_ORG, seen_since: datetime | None = None) -> list[MachineState]:
        """The latest state of every machine of `org` (last seen at or after `seen_since`).

        Read every few seconds by the fleet page and the silence sweep, so a backend may hand back
        the same objects for machines whose state did not change since the last call: treat them
        as read-only."""

    @abstractmethod
    def machine(self, machine_id: str, *, org: str = DEFAULT_ORG) -> MachineState | None:
        """The latest state of one machine, or None."""

    # --- history -------------------------------------------------------------------------------

    @abstractmethod
    def history(
        self, machine_id: str, *, org: str = DEFAULT_ORG, since: datetime | None = None,
        until: datetime | None = None, limit: int | None = None,
    ) -> list[Sample]:
        """A machine's samples in [since, until], newest first, at most `limit`."""

    @abstractmethod
    def history_buckets(
        self, machine_id: str, *, org: str = DEFAULT_ORG, since: datetime, until: datetime,
        points: int = 300, metrics: list[str] | None = None,
    ) -> list[Bucket]:
        """[since, until) cut into at most `points` equal buckets; min/avg/max per metric in each
        non-empty bucket, oldest first. `metrics=None` means every metric."""

    # --- events and audit ----------------------------------------------------------------------

    @abstractmethod
    def add_event(self, event: Event) -> Event:
        """Store an event; returns it with its `id`. New events are pending notification."""

    @abstractmethod
    def events(
        self, *, org: str = DEFAULT_ORG, machine_id: str | None = None, limit: int = 100,
        since: datetime | None = None,
    ) -> list[Event]:
        """Events, newest first."""

    @abstractmethod
    def pending_notifications(self, *, limit: int = 100) -> list[Event]:
        """Events of every org not yet marked notified, oldest first (the notification outbox)."""

    @abstractmethod
    def mark_notified(self, event_ids: list[int]) -> None:
        """Take events out of the outbox once their notification was delivered (or given up)."""

    @abstractmethod
    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        """Store an audit row (every action attempt, refused ones included); returns it with `id`."""

    @abstractmethod
    def audit(self, *, org: str = DEFAULT_ORG, limit: int = 100) -> list[AuditEntry]:
        """Audit rows, newest first."""

    # --- small shared state --------------------------------------------------------------------

    @abstractmethod
    def kv_get(self, namespace: str, key: str, *, org: str = DEFAULT_ORG) -> dict[str, Any] | None:
        """A small JSON value (maintenance windows, alert state, one-time tokens), or None if
        absent or expired."""

    def kv_get_many(self, namespace: str, keys: Iterable[str], *,
                    org: str = DEFAULT_ORG) -> dict[str, dict[str, Any]]:
        """The values of several keys by key, absent and expired ones left out. A backend may read
        them at once (the alert state of every machine in a batch of reports is one read)."""
        found = {}
        for key in dict.fromkeys(keys):
            value = self.kv_get(namespace, key, org=org)
            if value is not None:
                found[key] = value
        return found

    @abstractmethod
    def kv_put(
        self, namespace: str, key: str, value: dict[str, Any], *, org: str = DEFAULT_ORG,
        expires_at: datetime | None = None,
    ) -> None:
        """Create or replace a value."""

    @abstractmethod
    def kv_add(
        self, namespace: str, key: str, value: dict[str, Any], *, org: str = DEFAULT_ORG,
        expires_at: datetime | None = None,
    ) -> bool:
        """Create a value unless a live one exists; True if this call created it. Atomic across
        processes: of two callers adding the same key at once, exactly one gets True (binding a
        machine key, claiming a one-time token)."""

    @abstractmethod
    def kv_delete(self, namespace: str, key: str, *, org: str = DEFAULT_ORG) -> bool:
        """Delete a value; True if it existed. Deleting is atomic: a one-time token deleted by one
        process cannot be deleted (and so used) by another."""

    @abstractmethod
    def kv_list(self, namespace: str, *, org: str = DEFAULT_ORG) -> dict[str, dict[str, Any]]:
        """Every unexpired value of a namespace, by key."""

    @abstractmethod
    def incr(self, namespace: str, key: str, *, org: str = DEFAULT_ORG, expires_at: datetime) -> int:
        """Atomically add one to a counter and return the new count (rate limits). A counter past
        `expires_at` starts again from zero."""

    @abstractmethod
    def try_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Take or renew a named lease for `ttl_seconds`; True if `holder` now holds it. Scheduled
        server jobs take one so they run once per deployment, not once per worker."""

    # --- upkeep --------------------------------------------------------------------------------

    @abstractmethod
    def purge(self, before: datetime) -> int:
        """Delete samples and events older than `before` (retention); returns rows deleted."""

    @abstractmethod
    def close(self) -> None:
        """Release files, connections and locks."""

    # --- copying between backends (export, `dashfleet migrate`) -------------------------------
    # Not abstract, so a third-party backend without them still serves the server; it just cannot
    # be the source or the target of `dashfleet migrate`.

    def count_reports(
        self, *, org: str | None = None, machine_id: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
    ) -> int:
        """How many reports `iter_reports` with the same filters yields (for progress bars)."""
        return sum(1 for _ in self.iter_reports(org=org, machine_id=machine_id, since=since, until=until))

    def import_report(self, stored: StoredReport) -> bool:
        """Store a report copied from another backend, keeping its org and `received_at`. Idempotent:
        False when it is already there (by `seq`, or by `collected_at` for a report without seq)."""
        raise NotImplementedError(f"the {self.scheme} backend cannot be the target of a migration")

    def import_reports(self, stored: list[StoredReport]) -> list[bool]:
        """`import_report` for a batch; backends override it to commit the batch at once."""
        return [self.import_report(item) for item in stored]

    def iter_events(self) -> Iterator[tuple[Event, bool]]:
        """Every event of every org, oldest first, with whether it was already notified."""
        raise NotImplementedError(f"the {self.scheme} backend cannot be the source of a migration")

    def import_event(self, event: Event, notified: bool) -> bool:
        """Store a copied event unless an equal one is there; `notified` keeps it out of the outbox."""
        raise NotImplementedError(f"the {self.scheme} backend cannot be the target of a migration")

    def iter_audit(self) -> Iterator[AuditEntry]:
        """Every audit row of every org, oldest first."""
        raise NotImplementedError(f"the {self.scheme} backend cannot be the source of a migration")

    def import_audit(self, entry: AuditEntry) -> bool:
        """Store a copied audit row unless an equal one is there."""
        raise NotImplementedError(f"the {self.scheme} backend cannot be the target of a migration")

    def iter_kv(self) -> Iterator[tuple[str, str, str, dict[str, Any], datetime | None]]:
        """Every unexpired kv value: (org, namespace, key, value, expires_at)."""
        raise NotImplementedError(f"the {self.scheme} backend cannot be the source of a migration")

    def __enter__(self) -> "Storage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge_buckets(
    rows: list[tuple[int, int, dict[str, tuple[float, float, float]]]], start: float, width: float,
    points: int,
) -> list[Bucket]:
    """Build chart buckets from (index, sample count, {metric: (min, avg, max)}) rows, which may
    repeat an index (one row per metric); `start`/`width` in epoch seconds. Oldest first."""
    from datetime import timezone

    merged: dict[int, list] = {}
    for index, count, stats in rows:
        index = min(max(int(index), 0), points - 1)
        slot = merged.setdefault(index, [0, {}, {}, {}])
        slot[0] += count
        for name, (lo, avg, hi) in stats.items():
            slot[1][name], slot[2][name], slot[3][name] = float(lo), float(avg), float(hi)
    return [
        Bucket(
            start=datetime.fromtimestamp(start + i * width, timezone.utc),
            end=datetime.fromtimestamp(start + (i + 1) * width, timezone.utc),
            count=slot[0], min=slot[1], avg=slot[2], max=slot[3],
        )
        for i, slot in sorted(merged.items())
        if slot[0] > 0
    ]


def bucket_in_memory(
    samples: Iterator[tuple[float, dict[str, float]]], start: float, end: float, points: int,
    metrics: list[str] | None,
) -> list[Bucket]:
    """`history_buckets` over (epoch seconds, metrics) pairs, for backends without SQL."""
    points = max(1, int(points))
    if end <= start:
        return []
    width = (end - start) / points
    acc: dict[int, tuple[list[int], dict[str, list[float]]]] = {}
    for at, values in samples:
        if not start <= at < end:
            continue
        index = min(int((at - start) / width), points - 1)
        count, stats = acc.setdefault(index, ([0], {}))
        count[0] += 1
        for name, value in values.items():
            if metrics is not None and name not in metrics:
                continue
            s = stats.get(name)
            if s is None:
                stats[name] = [value, value, value, 1.0]
            else:
                s[0], s[1], s[2], s[3] = min(s[0], value), s[1] + value, max(s[2], value), s[3] + 1
    rows = [
        (i, count[0], {n: (s[0], s[1] / s[3], s[2]) for n, s in stats.items()})
        for i, (count, stats) in acc.items()
    ]
    return merge_buckets(rows, start, width, points)


def url_path(url: str) -> str:
    """The file path of a `scheme:///relative` or `scheme:////absolute` URL (SQLAlchemy style)."""
    rest = url.split(":", 1)[1] if ":" in url else url
    if not rest.startswith("///"):
        raise StorageError(
            f"storage URL {url!r} has no path: write {url.split(':', 1)[0]}:///relative/file "
            f"or {url.split(':', 1)[0]}:////absolute/file"
        )
    return rest[3:]


def open_storage(settings: Settings, pm, url: str | None = None) -> Storage:
    """Open the backend named by the URL's scheme (`[storage] url`, `$DASHFLEET_STORAGE`)."""
    from .plugins import gather

    url = url or settings.storage.url
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgres", "postgresql+psycopg"):
        scheme = "postgresql"
    backends = gather(pm, "register_storage", "storage backend", settings=settings)
    if scheme not in backends:
        available = ", ".join(f"{s}://" for s in sorted(backends)) or "none (all disabled?)"
        failed = "".join(f"; plugin {name!r} failed in register_storage: {problem}"
                         for name, problem in backends.failures.items())
        raise ConfigError(
            f"{settings.source}: [storage] url {redact_url(url)!r}: no storage plugin handles "
            f"{scheme or 'this'}://; available: {available}{failed}"
        )
    return backends[scheme](url, settings)


def redact_url(url: str) -> str:
    """A storage URL fit for a message or a log: the password (in the address or as a `password=`
    query option) replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    return re.sub(r"(?i)((?:^|[?&])password=)[^&]*", r"\1***", url)

