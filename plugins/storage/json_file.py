"""JSON file storage (`json:///logs/fleet_state.json`): the seed's state file, for small fleets.

The whole state is one JSON document, rewritten atomically on every change (temp file, fsync,
rename, fsync of the folder) under a lock: a thread lock plus an advisory `flock` on
`<file>.lock`, so a CLI command next to the server cannot interleave its writes. The lock file
stays when a process is done with it (empty, 0600): deleting it while another process holds or
waits on it would let the next writer lock a new file of the same name and write at the same time. Every operation
reloads the file if another process changed it. A file that does not parse is never overwritten:
opening it fails with a message saying where it is and how to recover, and a copy is kept.

The seed's own format (a JSON object `{"machines": {id: {"latest": {...}, "history": [...]}}}`,
see docs/storage.md) is read as well; the first write keeps the seed file as
`<file>.seed-backup` and then writes this module's format (`"format": "dashfleet-json"`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Collection, Iterator

from pydantic import ValidationError

from dashfleet_core import hookimpl
from dashfleet_core.models import (
    DEFAULT_ORG, AuditEntry, Bucket, Event, Health, MachineState, Report, Sample, as_utc, report_digest,
)
from dashfleet_core.private_files import private_folder, tighten
from dashfleet_core.storage import Storage, StorageError, StorageFull, StoredReport, bucket_in_memory, url_path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process only, the thread lock still holds
    fcntl = None

PLUGIN_NAME = "json"
FORMAT = "dashfleet-json"
VERSION = 1
SEED_METRICS = {"cpu": "cpu.percent", "memory": "memory.percent", "disk": "disk.percent",
                "swap": "swap.percent"}


def _epoch(value: datetime) -> float:
    return as_utc(value).timestamp()


def _iso(value: datetime) -> str:
    return as_utc(value).isoformat()


def _dt(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value))


def empty_state() -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "orgs": {}, "events": [], "audit": [],
            "kv": {}, "counters": {}, "leases": {}, "next_id": {"event": 1, "audit": 1}}


class JsonStorage(Storage):
    scheme = "json"

    def __init__(self, url: str, settings=None) -> None:
        self.path = Path(url_path(url.partition("?")[0]))
        try:
            private_folder(self.path.parent)  # the file itself is written 0600 (mkstemp)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of the JSON state file {self.path}: {exc}") from None
        self._lock = threading.RLock()
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd: int | None = None
        self._lock_pid = os.getpid()
        self._signature: tuple | None = None
        self._state = empty_state()
        self._is_seed = False
        self._seqs: dict[tuple[str, str], set[int]] = {}
        self._digests: dict[tuple[str, str], set[str]] = {}
        self._closed = False
        with self._locked(write=False):
            pass  # load now, so a broken file stops the server at start-up

    # --- the file ------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, write: bool) -> Iterator[dict[str, Any]]:
        with self._lock:
            if self._closed:
                raise StorageError(f"{self.path}: storage is closed")
            if fcntl is not None:
                if self._lock_fd is not None and self._lock_pid != os.getpid():
                    self._lock_fd = None  # forked: a flock on the inherited descriptor is shared
                if self._lock_fd is None:
                    self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                    self._lock_pid = os.getpid()
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                self._reload_if_changed()
                if not write:
                    yield self._state
                    return
                snapshot = json.dumps(self._state)
                try:
                    yield self._state
                    self._write()
                except BaseException as exc:
                    # nothing half-done, and nothing that did not reach the disk, stays in memory
                    self._state = json.loads(snapshot)
                    self._index()
                    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                        raise StorageFull(self.path) from exc
                    raise
            finally:
                if fcntl is not None and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _stat(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _reload_if_changed(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        if signature is None:
            self._state, self._is_seed = empty_state(), False
        else:
            raw = self.path.read_bytes()
            self._state, self._is_seed = self._parse(raw)
        self._signature = signature
        self._index()

    def _parse(self, raw: bytes) -> tuple[dict[str, Any], bool]:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("the top level is not a JSON object")
            if doc.get("format") == FORMAT:
                if doc.get("version") != VERSION:
                    raise ValueError(f"format version {doc.get('version')!r}; this DashFleet reads "
                                     f"version {VERSION}: upgrade DashFleet")
                return doc, False
            if isinstance(doc.get("machines"), dict):
                return from_seed(doc), True
            raise ValueError('it has neither "format": "dashfleet-json" nor a "machines" object')
        except (ValueError, TypeError, KeyError, ValidationError) as exc:
            copy = self._keep_copy(raw)
            raise StorageError(
                f"the JSON state file {self.path} cannot be read: {_short(exc)}. It was not changed, "
                f"and a copy is at {copy}. To recover: repair the file by hand (or restore a backup) "
                f"and start again, or move it aside (mv {self.path} {self.path}.bad) to start with "
                f"an empty state"
            ) from None

    def _keep_copy(self, raw: bytes) -> Path:
        digest = hashlib.sha256(raw).hexdigest()[:12]
        copy = self.path.with_name(f"{self.path.name}.unreadable-{digest}")
        if not copy.exists():
            copy.write_bytes(raw)
        return copy

    def _write(self) -> None:
        if self._is_seed and self.path.exists():
            backup = self.path.with_name(self.path.name + ".seed-backup")
            if not backup.exists():
                shutil.copy2(self.path, backup)
                tighten(backup)  # copy2 copies the seed's mode, often 0644
        data = json.dumps(self._state, separators=(",", ":")).encode()
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if hasattr(os, "O_DIRECTORY"):
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._is_seed = False
        self._signature = self._stat()

    def _index(self) -> None:
        """Per machine: its stored seqs, and the content digests of its reports without seq."""
        self._seqs = {}
        self._digests = {}
        for org, machines in self._state["orgs"].items():
            for machine_id, m in machines.items():
                self._seqs[(org, machine_id)] = {h["seq"] for h in m["history"] if h["seq"] is not None}
                self._digests[(org, machine_id)] = {h["digest"] for h in m["history"] if h.get("digest")}

    # --- reports -------------------------------------------------------------------------------

    def save_report(self, report: Report, health: Health, *, org: str = DEFAULT_ORG,
                    received_at: datetime | None = None) -> bool:
        return self.save_reports([(report, health)], org=org, received_at=received_at)[0]

    def save_reports(self, items: list[tuple[Report, Health]], *, org: str = DEFAULT_ORG,
                     received_at: datetime | None = None, by_seq: Collection[str] = ()) -> list[bool]:
        received = received_at or datetime.now(timezone.utc)
        with self._locked(write=True) as state:
            return [self._add(state, org, r, h, received, dedupe_unsequenced=False,
                              by_seq=r.machine_id in by_seq) for r, h in items]

    def import_report(self, stored: StoredReport) -> bool:
        return self.import_reports([stored])[0]

    def import_reports(self, stored: list[StoredReport]) -> list[bool]:
        with self._locked(write=True) as state:
            return [self._add(state, s.org, s.report, s.health, s.received_at, dedupe_unsequenced=True)
                    for s in stored]

    def _add(self, state, org: str, report: Report, health: Health, received: datetime,
             dedupe_unsequenced: bool, by_seq: bool = False) -> bool:
        seqs = self._seqs.setdefault((org, report.machine_id), set())
        digests = self._digests.setdefault((org, report.machine_id), set())
        machines = state["orgs"].setdefault(org, {})
        entry = machines.get(report.machine_id)
        if report.seq is not None and report.seq in seqs:
            return False
        collected = _iso(report.collected_at)
        digest = report_digest(report) if report.seq is None else None
        if digest in digests:
            return False
        if report.seq is None and dedupe_unsequenced and entry is not None and any(
            h["seq"] is None and h["collected_at"] == collected for h in entry["history"]
        ):
            return False
        item = {"seq": report.seq, "collected_at": collected, "received_at": _iso(received),
                "report": report.model_dump(mode="json"), "health": health.model_dump(mode="json")}
        if digest:
            item["digest"] = digest
            digests.add(digest)
        if entry is None:
            entry = machines[report.machine_id] = {"first_seen": item["received_at"],
                                                   "last_seen": item["received_at"],
                                                   "latest": item, "history": []}
        entry["history"].append(item)
        entry["first_seen"] = _iso(min(_dt(entry["first_seen"]), as_utc(received)))
        entry["last_seen"] = _iso(max(_dt(entry["last_seen"]), as_utc(received)))
        latest_seq = entry["latest"]["seq"]
        if not by_seq or latest_seq is None or report.seq is None or report.seq >= latest_seq:
            entry["latest"] = item  # the report that arrived last, or for a keyed machine the highest seq
        if report.seq is not None:
            seqs.add(report.seq)
        return True

    def stored_report(self, machine_id: str, seq: int, *, org: str = DEFAULT_ORG) -> Report | None:
        with self._locked(write=False) as state:
            entry = state["orgs"].get(org, {}).get(machine_id)
            for item in entry["history"] if entry else ():
                if item["seq"] == seq:
                    return Report.model_validate(item["report"])
        return None

    def max_seq(self, machine_id: str, *, org: str = DEFAULT_ORG) -> int | None:
        with self._locked(write=False):
            return max(self._seqs.get((org, machine_id), ()), default=None)

    def iter_reports(self, *, org: str | None = None, machine_id: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> Iterator[StoredReport]:
        found = []
        with self._locked(write=False) as state:
            for org_name, machines in state["orgs"].items():
                if org is not None and org_name != org:
                    continue
                for mid, entry in machines.items():
                    if machine_id is not None and mid != machine_id:
                        continue
                    for n, item in enumerate(entry["history"]):
                        at = _dt(item["collected_at"])
                        if (since is None or at >= as_utc(since)) and (until is None or at <= as_utc(until)):
                            found.append((at, item["received_at"], n, org_name, item))
        found.sort(key=lambda f: (f[0], f[1], f[2]))
        for _at, _received, _n, org_name, item in found:
            yield StoredReport(org=org_name, report=Report.model_validate(item["report"]),
                               health=Health.model_validate(item["health"]),
                               received_at=_dt(item["received_at"]))

    # --- fleet ---------------------------------------------------------------------------------

    def machines(self, *, org: str = DEFAULT_ORG, seen_since: datetime | None = None) -> list[MachineState]:
        with self._locked(write=False) as state:
            machines = state["orgs"].get(org, {})
            found = [self._state_of(org, mid, e) for mid, e in sorted(machines.items())]
        if seen_since is not None:
            found = [m for m in found if m.last_seen >= as_utc(seen_since)]
        return found

    def machine(self, machine_id: str, *, org: str = DEFAULT_ORG) -> MachineState | None:
        with self._locked(write=False) as state:
            entry = state["orgs"].get(org, {}).get(machine_id)
            return self._state_of(org, machine_id, entry) if entry else None

    @staticmethod
    def _state_of(org: str, machine_id: str, entry: dict[str, Any]) -> MachineState:
        latest = entry["latest"]
        r = latest["report"]
        return MachineState(
            org=org, machine_id=machine_id, hostname=r["hostname"], os=r["os"],
            agent_version=r["agent_version"], last_seq=latest["seq"],
            first_seen=entry["first_seen"], last_seen=entry["last_seen"],
            collected_at=latest["collected_at"], metrics=r["metrics"], facts=r["facts"],
            health=latest["health"], spool_dropped=r["spool_dropped"],
        )

    # --- history -------------------------------------------------------------------------------

    def _items(self, org: str, machine_id: str) -> list[dict[str, Any]]:
        with self._locked(write=False) as state:
            entry = state["orgs"].get(org, {}).get(machine_id)
            return list(entry["history"]) if entry else []

    def history(self, machine_id: str, *, org: str = DEFAULT_ORG, since: datetime | None = None,
                until: datetime | None = None, limit: int | None = None) -> list[Sample]:
        rows = []
        for n, item in enumerate(self._items(org, machine_id)):
            at = _dt(item["collected_at"])
            if (since is None or at >= as_utc(since)) and (until is None or at <= as_utc(until)):
                rows.append((at, n, item))
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        if limit is not None:
            rows = rows[:max(0, int(limit))]
        return [
            Sample(machine_id=machine_id, seq=item["seq"], collected_at=at,
                   received_at=item["received_at"], metrics=item["report"]["metrics"],
                   score=item["health"]["score"], status=item["health"]["status"])
            for at, _n, item in rows
        ]

    def history_buckets(self, machine_id: str, *, org: str = DEFAULT_ORG, since: datetime,
                        until: datetime, points: int = 300, metrics: list[str] | None = None) -> list[Bucket]:
        pairs = ((_dt(i["collected_at"]).timestamp(), i["report"]["metrics"])
                 for i in self._items(org, machine_id))
        return bucket_in_memory(pairs, _epoch(since), _epoch(until), points, metrics)

    # --- events and audit ----------------------------------------------------------------------

    def add_event(self, event: Event) -> Event:
        return self._insert_event(event, notified=False)

    def _insert_event(self, event: Event, notified: bool) -> Event:
        with self._locked(write=True) as state:
            new_id = state["next_id"]["event"]
            state["next_id"]["event"] = new_id + 1
            stored = event.model_copy(update={"id": new_id})
            state["events"].append({"event": stored.model_dump(mode="json"), "notified": notified})
        return stored

    def _all_events(self) -> list[tuple[Event, bool]]:
        with self._locked(write=False) as state:
            return [(Event.model_validate(e["event"]), e["notified"]) for e in state["events"]]

    def events(self, *, org: str = DEFAULT_ORG, machine_id: str | None = None, limit: int = 100,
               since: datetime | None = None) -> list[Event]:
        found = [e for e, _ in self._all_events()
                 if e.org == org and (machine_id is None or e.machine_id == machine_id)
                 and (since is None or e.at >= as_utc(since))]
        found.sort(key=lambda e: (e.at, e.id), reverse=True)
        return found[:max(0, int(limit))]

    def pending_notifications(self, *, limit: int = 100) -> list[Event]:
        return [e for e, notified in self._all_events() if not notified][:max(0, int(limit))]

    def mark_notified(self, event_ids: list[int]) -> None:
        ids = set(event_ids)
        if not ids:
            return
        with self._locked(write=True) as state:
            for item in state["events"]:
                if item["event"]["id"] in ids:
                    item["notified"] = True

    def iter_events(self) -> Iterator[tuple[Event, bool]]:
        yield from self._all_events()

    def import_event(self, event: Event, notified: bool) -> bool:
        probe = event.model_copy(update={"id": None})
        if any(e.model_copy(update={"id": None}) == probe for e, _ in self._all_events()):
            return False
        self._insert_event(probe, notified)
        return True

    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        with self._locked(write=True) as state:
            new_id = state["next_id"]["audit"]
            state["next_id"]["audit"] = new_id + 1
            stored = entry.model_copy(update={"id": new_id})
            state["audit"].append(stored.model_dump(mode="json"))
        return stored

    def _all_audit(self) -> list[AuditEntry]:
        with self._locked(write=False) as state:
            return [AuditEntry.model_validate(a) for a in state["audit"]]

    def audit(self, *, org: str = DEFAULT_ORG, limit: int = 100) -> list[AuditEntry]:
        found = [a for a in self._all_audit() if a.org == org]
        found.sort(key=lambda a: (a.at, a.id), reverse=True)
        return found[:max(0, int(limit))]

    def iter_audit(self) -> Iterator[AuditEntry]:
        yield from self._all_audit()

    def import_audit(self, entry: AuditEntry) -> bool:
        probe = entry.model_copy(update={"id": None})
        if any(a.model_copy(update={"id": None}) == probe for a in self._all_audit()):
            return False
        self.add_audit(probe)
        return True

    # --- small shared state --------------------------------------------------------------------

    @staticmethod
    def _live(item: dict[str, Any] | None) -> bool:
        return item is not None and (item["expires_at"] is None or item["expires_at"] > time.time())

    def kv_get(self, namespace: str, key: str, *, org: str = DEFAULT_ORG) -> dict[str, Any] | None:
        with self._locked(write=False) as state:
            item = state["kv"].get(org, {}).get(namespace, {}).get(key)
            return json.loads(json.dumps(item["value"])) if self._live(item) else None

    def kv_put(self, namespace: str, key: str, value: dict[str, Any], *, org: str = DEFAULT_ORG,
               expires_at: datetime | None = None) -> None:
        item = {"value": json.loads(json.dumps(value)),
                "expires_at": _epoch(expires_at) if expires_at is not None else None}
        with self._locked(write=True) as state:
            state["kv"].setdefault(org, {}).setdefault(namespace, {})[key] = item

    def kv_add(self, namespace: str, key: str, value: dict[str, Any], *, org: str = DEFAULT_ORG,
               expires_at: datetime | None = None) -> bool:
        with self._locked(write=True) as state:
            items = state["kv"].setdefault(org, {}).setdefault(namespace, {})
            if self._live(items.get(key)):
                return False
            items[key] = {"value": json.loads(json.dumps(value)),
                          "expires_at": _epoch(expires_at) if expires_at is not None else None}
            return True

    def kv_delete(self, namespace: str, key: str, *, org: str = DEFAULT_ORG) -> bool:
        with self._locked(write=True) as state:
            item = state["kv"].get(org, {}).get(namespace, {}).pop(key, None)
            return self._live(item)

    def kv_list(self, namespace: str, *, org: str = DEFAULT_ORG) -> dict[str, dict[str, Any]]:
        with self._locked(write=False) as state:
            items = state["kv"].get(org, {}).get(namespace, {})
            return {k: json.loads(json.dumps(v["value"])) for k, v in sorted(items.items()) if self._live(v)}

    def iter_kv(self) -> Iterator[tuple[str, str, str, dict[str, Any], datetime | None]]:
        with self._locked(write=False) as state:
            rows = [(org, ns, key, item["value"], item["expires_at"])
                    for org, spaces in state["kv"].items() for ns, items in spaces.items()
                    for key, item in items.items() if self._live(item)]
        for org, ns, key, value, expires in rows:
            yield org, ns, key, value, (datetime.fromtimestamp(expires, timezone.utc)
                                        if expires is not None else None)

    def incr(self, namespace: str, key: str, *, org: str = DEFAULT_ORG, expires_at: datetime) -> int:
        with self._locked(write=True) as state:
            counters = state["counters"].setdefault(org, {}).setdefault(namespace, {})
            item = counters.get(key)
            if item is None or item["expires_at"] <= time.time():
                item = counters[key] = {"count": 0, "expires_at": _epoch(expires_at)}
            item["count"] += 1
            return item["count"]

    def try_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._locked(write=True) as state:
            lease = state["leases"].get(name)
            if lease is not None and lease["holder"] != holder and lease["expires_at"] > now:
                return False
            state["leases"][name] = {"holder": holder, "expires_at": now + float(ttl_seconds)}
            return True

    # --- upkeep --------------------------------------------------------------------------------

    def purge(self, before: datetime) -> int:
        cutoff = as_utc(before)
        now = time.time()
        deleted = 0
        with self._locked(write=True) as state:
            for machines in state["orgs"].values():
                for entry in machines.values():
                    kept = [h for h in entry["history"] if _dt(h["collected_at"]) >= cutoff]
                    deleted += len(entry["history"]) - len(kept)
                    entry["history"] = kept
            kept_events = [e for e in state["events"] if _dt(e["event"]["at"]) >= cutoff]
            deleted += len(state["events"]) - len(kept_events)
            state["events"] = kept_events
            for table in ("kv", "counters"):
                for spaces in state[table].values():
                    for items in spaces.values():
                        for key in [k for k, v in items.items()
                                    if v["expires_at"] is not None and v["expires_at"] <= now]:
                            del items[key]
            for name in [n for n, v in state["leases"].items() if v["expires_at"] <= now]:
                del state["leases"][name]
        # the seq index keeps purged seqs: a late duplicate of a purged report stays a duplicate
        return deleted

    def counts(self) -> dict[str, int]:
        with self._locked(write=False) as state:
            machines = [e for m in state["orgs"].values() for e in m.values()]
            return {"machines": len(machines), "samples": sum(len(e["history"]) for e in machines),
                    "events": len(state["events"]), "audit": len(state["audit"]),
                    "kv": sum(len(i) for s in state["kv"].values() for i in s.values())}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


# --- the seed's format -----------------------------------------------------------------------------


def from_seed(doc: dict[str, Any]) -> dict[str, Any]:
    """Convert the seed's `{"machines": {id: {"latest": entry, "history": [entry, ...]}}}` into this
    module's format (every machine in the default org). Raises ValueError naming a bad entry."""
    state = empty_state()
    machines: dict[str, Any] = {}
    seqs: dict[str, set[int]] = {}
    for machine_id, record in doc["machines"].items():
        if not isinstance(record, dict):
            raise ValueError(f"machines[{machine_id!r}] is not an object")
        history = record.get("history") or []
        if not isinstance(history, list):
            raise ValueError(f"machines[{machine_id!r}].history is not a list")
        latest = record.get("latest")
        base = latest if isinstance(latest, dict) else {}
        entries = list(history)
        stamps = {_seed_time(e, machine_id) for e in history if isinstance(e, dict)}
        if isinstance(latest, dict) and _seed_time(latest, machine_id) not in stamps:
            entries.append(latest)
        for n, raw in enumerate(entries):
            where = f"machines[{machine_id!r}].history[{n}]" if n < len(history) else \
                f"machines[{machine_id!r}].latest"
            if not isinstance(raw, dict):
                raise ValueError(f"{where} is not an object")
            report, health = _seed_report(machine_id, raw, base, where)
            item = {"seq": report.seq, "collected_at": _iso(report.collected_at),
                    "received_at": _iso(report.collected_at),
                    "report": report.model_dump(mode="json"), "health": health.model_dump(mode="json")}
            entry = machines.get(machine_id)
            if entry is None:
                entry = machines[machine_id] = {"first_seen": item["received_at"],
                                                "last_seen": item["received_at"],
                                                "latest": item, "history": []}
            if report.seq is not None and report.seq in seqs.setdefault(machine_id, set()):
                continue
            if report.seq is not None:
                seqs[machine_id].add(report.seq)
            entry["history"].append(item)
            entry["first_seen"] = min(entry["first_seen"], item["received_at"], key=_dt)
            entry["last_seen"] = max(entry["last_seen"], item["received_at"], key=_dt)
            if _dt(item["collected_at"]) >= _dt(entry["latest"]["collected_at"]):
                entry["latest"] = item
    if machines:
        state["orgs"][DEFAULT_ORG] = machines
    return state


def _seed_time(entry: dict[str, Any], machine_id: str) -> datetime:
    value = entry.get("collected_at", entry.get("timestamp"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise ValueError(f"an entry of machine {machine_id!r} has no timestamp/collected_at")


def _seed_report(machine_id: str, raw: dict[str, Any], base: dict[str, Any], where: str):
    known = {"timestamp", "collected_at", "hostname", "os", "agent_version", "seq", "score",
             "status", "metrics", "facts", "findings", "machine_id"}
    metrics = dict(raw.get("metrics") or {})
    for key, value in raw.items():
        if key in known or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        metrics[SEED_METRICS.get(key, key)] = float(value)
    try:
        report = Report(
            machine_id=machine_id, hostname=raw.get("hostname", base.get("hostname", "")) or "",
            os=raw.get("os", base.get("os", "")) or "",
            agent_version=raw.get("agent_version", base.get("agent_version", "")) or "",
            seq=raw.get("seq"), collected_at=_seed_time(raw, machine_id), metrics=metrics,
            facts={str(k): str(v) for k, v in (raw.get("facts") or {}).items()},
        )
        status = raw.get("status") or "ok"
        health = Health(score=raw.get("score", 100 if status == "ok" else 50 if status == "warn" else 0),
                        status=status, findings=raw.get("findings") or [])
    except ValidationError as exc:
        raise ValueError(f"{where}: {_short(exc)}") from None
    return report, health


def open_json(url: str, settings=None) -> JsonStorage:
    return JsonStorage(url, settings)


@hookimpl
def register_storage(register):
    register("json", open_json)
