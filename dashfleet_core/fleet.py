"""The server-side service: score and store reports, and run the server's jobs once per deployment.

A web host (the `dashfleet web` process, or each gunicorn/waitress worker) builds one `Fleet`. It
holds the settings, the plugin manager, the engine (collectors, health checks, scheduler) and the
storage backend, and the alerting service (`fleet.alerting`). Request handlers call `ingest`;
plugins reach the same object through the app (`current_app.extensions["dashfleet"]`).

Scheduled jobs run in one process per host (the holder of a file lock, see `job_runner`), and
each run first takes a named lease in storage, so with several servers on one PostgreSQL one of
them runs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterable

import pluggy

from .accounts import Accounts
from .alerting import Alerting
from .config import Settings
from .engine import Engine, default_machine_id
from .job_runner import JobRunnerLock, lock_path
from .legacy import offer_migration
from .machine_keys import MachineKeys
from .models import DEFAULT_ORG, Event, Health, Report, utcnow
from .plugins import call_each, make_plugin_manager
from .storage import Storage, open_storage

log = logging.getLogger(__name__)

ALERTING = "alerting"  # the plugin name alerting's hooks are registered under
RETENTION_EVERY_SECONDS = 3600.0
SAME_TIME_SECONDS = 0.001  # collected_at read back from storage may differ by rounding, not more


@dataclass(frozen=True)
class Receipt:
    """What became of one report an agent sent: stored, a duplicate (stored before with the same
    content), a conflict (its seq is stored with other content; `last_seq` is the machine's highest
    stored seq, after which the agent renumbers), or refused (`error`, naming `fields`: a time that
    cannot be true). Only a stored report or a duplicate is acknowledged."""

    stored: bool
    conflict: bool = False
    last_seq: int | None = None
    error: str | None = None
    fields: tuple[str, ...] = ()

    @property
    def acknowledged(self) -> bool:
        return not self.conflict and self.error is None


def conflict_message(report: Report, last_seq: int | None) -> str:
    return (f"seq {report.seq} of machine {report.machine_id!r} is already stored with different content; "
            f"nothing was stored. Send this report again numbered after last_seq ({last_seq}), "
            "as the DashFleet agent does")


def same_content(stored: Report, sent: Report) -> bool:
    """Whether a report sent under a stored `(machine_id, seq)` is the same delivery again. A sent
    report without `collected_at` took the server's clock, so its time cannot tell."""
    same_time = ("collected_at" not in sent.model_fields_set
                 or abs((stored.collected_at - sent.collected_at).total_seconds()) <= SAME_TIME_SECONDS)
    return (same_time and stored.hostname == sent.hostname and stored.os == sent.os
            and stored.agent_version == sent.agent_version and stored.metrics == sent.metrics
            and stored.facts == sent.facts and stored.spool_dropped == sent.spool_dropped)


def lease_ttl(interval: float) -> float:
    """How long a job's lease lasts: long enough that its holder renews it before it lapses, short
    enough that another process takes the job over soon after the holder dies."""
    return max(2.0 * interval, interval + 30.0)


class Fleet:
    """One server process's view of the fleet: ingest reports, run jobs, start and stop cleanly."""

    def __init__(
        self,
        settings: Settings | None = None,
        pm: pluggy.PluginManager | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.pm = pm or make_plugin_manager(self.settings)
        self.engine = Engine(self.settings, self.pm)
        self.storage = storage if storage is not None else open_storage(self.settings, self.pm)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.self_machine_id = self.settings.agent.machine_id or default_machine_id()
        self.started = False
        self.runs_jobs = False  # this process holds the host's job-runner lock and runs the jobs
        self._runner_lock: JobRunnerLock | None = None
        self._jobs: list[tuple[str, float, Callable[[], Any]]] = []
        self._lock = threading.Lock()
        self._last_self_seq = 0
        self.machine_keys = MachineKeys(self.storage)
        self._accounts: Accounts | None = None
        self.alerting = Alerting(self)
        self._register_alerting()

    @property
    def accounts(self) -> Accounts:
        """Organisations, keys, users, sessions and agent links, over this fleet's storage."""
        if self._accounts is None or self._accounts.storage is not self.storage:
            self._accounts = Accounts(self.storage, self.settings)
        return self._accounts

    def _register_alerting(self) -> None:
        """Register `self.alerting` for its hooks (`startup` schedules the alert job,
        `report_stored` feeds the tracker), unless the manager blocks the name: then no event is
        stored and nobody is told, while the maintenance API still works through `self.alerting`."""
        if not self.pm.is_blocked(ALERTING) and not self.pm.has_plugin(ALERTING):
            self.pm.register(self.alerting, name=ALERTING)

    # --- reports -------------------------------------------------------------------------------

    def receive(self, reports: list[Report], *, org: str = DEFAULT_ORG,
                machine_key: str | None = None) -> list[Receipt]:
        """What the report API does with an agent's request: refuse reports whose time cannot be
        true, check the machine key of every machine in the request (`MachineKeyError`, nothing
        stored, when one is refused), score and store the rest, and tell a duplicate from a
        conflict. One `Receipt` per report, in order."""
        now = utcnow()
        receipts: list[Receipt | None] = []
        accepted: list[Report] = []
        for report in reports:
            error = self.time_error(report, now)
            receipts.append(Receipt(stored=False, error=error, fields=("collected_at",)) if error else None)
            if not error:
                accepted.append(report)
        if accepted:
            by_seq = self.machine_keys.verify((r.machine_id for r in accepted), machine_key, org=org)
            results = iter(self._deliveries(accepted, self.ingest(accepted, org=org, by_seq=by_seq), org))
            receipts = [receipt or next(results) for receipt in receipts]
        return receipts  # type: ignore[return-value]  # every None was replaced

    def time_error(self, report: Report, now) -> str | None:
        """Why a report's `collected_at` cannot be true: too far ahead of the server's clock (its
        charts and alerts would show the future), or older than the retention window (the next
        retention run would delete it, or its clock says year 1)."""
        max_ahead = self.settings.server.max_clock_ahead_seconds
        max_age = self.settings.storage.retention_days * 86400.0
        ahead = (report.collected_at - now).total_seconds()
        when = report.collected_at.isoformat().replace("+00:00", "Z")
        if ahead > max_ahead:
            return (f"collected_at: {when} is {ahead:.0f} s ahead of the server's clock (at most {max_ahead:g} s, "
                    f"[server] max_clock_ahead_seconds); set the clock of the machine that sent it (NTP)")
        if -ahead > max_age:
            return (f"collected_at: {when} is older than the retention window ({max_age / 86400:g} days, "
                    f"[storage] retention_days); set the clock of the machine that sent it (NTP), or drop "
                    f"reports that old")
        return None

    def _deliveries(self, reports: list[Report], stored: list[bool], org: str) -> list[Receipt]:
        """Stored, duplicate or conflict, for reports that went to storage."""
        receipts: list[Receipt] = []
        conflicted: dict[str, int | None] = {}
        for report, was_stored in zip(reports, stored):
            if was_stored or report.seq is None:
                receipts.append(Receipt(stored=was_stored))
                continue
            before = self.storage.stored_report(report.machine_id, report.seq, org=org)
            if before is None or same_content(before, report):
                receipts.append(Receipt(stored=False))
                continue
            if report.machine_id not in conflicted:
                conflicted[report.machine_id] = self.storage.max_seq(report.machine_id, org=org)
                self._record_conflict(report, conflicted[report.machine_id], org)
            last = conflicted[report.machine_id]
            receipts.append(Receipt(stored=False, conflict=True, last_seq=last, error=conflict_message(report, last)))
        return receipts

    def _record_conflict(self, report: Report, last_seq: int | None, org: str) -> None:
        """An event, so that people see a machine whose seq numbers collide (a reinstalled agent
        that started again at 1, or someone posting as the machine with the fleet token)."""
        keyed = self.machine_keys.is_bound(report.machine_id, org=org)
        message = (f"report seq {report.seq} arrived again with different content (highest stored seq "
                   f"{last_seq}); the agent renumbers its pending reports after it")
        if not keyed:
            message += ("; this machine has no machine key, so a holder of the fleet token may be posting "
                        "as it")
        log.warning("machine %r: %s", report.machine_id, message)
        self.storage.add_event(Event(org=org, machine_id=report.machine_id, kind="seq_conflict", message=message,
                                     details={"seq": report.seq, "last_seq": last_seq, "keyed": keyed}))

    def ingest(self, reports: Iterable[Report], org: str = DEFAULT_ORG,
               by_seq: set[str] | frozenset[str] = frozenset()) -> list[bool]:
        """Score each report with the server's own thresholds and store it.

        Returns one bool per report: True if stored, False if `(machine_id, seq)` was already
        stored (a duplicate, acknowledged but not stored twice). Storage errors propagate: nothing
        is acknowledged when the save did not commit. `by_seq`: see `Storage.save_reports`.
        """
        items = [(report, self.engine.evaluate(report.metrics, report.failure_findings() or None))
                 for report in reports]
        return self.store(items, org=org, by_seq=by_seq)

    def store(self, items: list[tuple[Report, Health]], org: str = DEFAULT_ORG,
              by_seq: set[str] | frozenset[str] = frozenset()) -> list[bool]:
        """Store already-scored reports (one transaction), then tell plugins about each one that
        was new."""
        if not items:
            return []
        results = self.storage.save_reports(items, org=org, received_at=utcnow(), by_seq=by_seq)
        if self.pm.hook.report_stored.get_hookimpls():
            new = [item for item, stored in zip(items, results) if stored]
            with self._alerting_batch(new, org):
                for report, health in new:
                    self._notify_stored(report, health, org)
        return results

    def _alerting_batch(self, items: list[tuple[Report, Health]], org: str):
        """Alerting reads the state of a batch's machines at once (one read per request)."""
        if len(items) < 2 or not self.pm.is_registered(self.alerting):
            return contextlib.nullcontext()
        return self.alerting.batch([report.machine_id for report, _ in items], org=org)

    def _notify_stored(self, report: Report, health: Health, org: str) -> None:
        """Call each `report_stored` plugin on its own: the report is already committed, so one
        plugin's exception must neither skip the others nor turn the answer into an error."""
        call_each(self.pm, "report_stored", {"report": report, "health": health, "org": org})

    # --- this server's own machine -------------------------------------------------------------

    def report_self(self) -> bool:
        """Collect this machine's metrics and store them as a report of the fleet."""
        report, health = self.engine.cycle(self.self_machine_id, seq=self._next_self_seq())
        return self.store([(report, health)])[0]

    def _next_self_seq(self) -> int:
        """Milliseconds since the epoch, strictly increasing: unique across restarts too."""
        with self._lock:
            seq = max(int(time.time() * 1000), self._last_self_seq + 1)
            self._last_self_seq = seq
            return seq

    # --- jobs ----------------------------------------------------------------------------------

    def schedule(self, name: str, seconds: float, func: Callable[[], Any]) -> None:
        """Run `func` every `seconds`, once per deployment: each run takes the storage lease
        `job:<name>` first and skips the run if another process holds it."""
        with self._lock:
            self._jobs = [j for j in self._jobs if j[0] != name] + [(name, seconds, func)]
            running = self.runs_jobs
        if running:
            self._add_job(name, seconds, func)

    def _add_job(self, name: str, seconds: float, func: Callable[[], Any]) -> None:
        ttl = lease_ttl(seconds)

        def run_if_leader() -> None:
            if self.storage.try_lease(f"job:{name}", self.holder, ttl):
                func()

        self.engine.every(seconds, run_if_leader, job_id=name)

    def _hand_over_leases(self) -> None:
        """Let the jobs' leases this process holds lapse now (renewed into the past), so the
        next runner does not wait out their time to live."""
        with self._lock:
            names = [name for name, _, _ in self._jobs]
        for name in names:
            try:
                self.storage.try_lease(f"job:{name}", self.holder, -1)
            except Exception as exc:  # stopping anyway: the lease lapses by itself
                log.warning("could not hand over the lease of job %r: %s", name, exc)

    def purge_old(self) -> int:
        """Retention: delete samples and events older than `[storage] retention_days`."""
        cutoff = utcnow() - timedelta(days=self.settings.storage.retention_days)
        deleted = self.storage.purge(cutoff)
        if deleted:
            log.info("retention: deleted %d rows older than %s", deleted, cutoff.isoformat())
        return deleted

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Run plugins' `startup` hooks and start the scheduled jobs (retention, self-report) in
        this process if it is the host's job runner, else as soon as it becomes the runner."""
        with self._lock:
            if self.started:
                return
        self.engine.startup()
        self.schedule("retention", RETENTION_EVERY_SECONDS, self.purge_old)
        if self.settings.server.report_self:
            self.schedule("self-report", self.settings.server.self_interval, self.report_self)
        with self._lock:
            self.started = True
        self._runner_lock = JobRunnerLock(lock_path(self.settings.server.data_dir, self.settings.storage.url))
        self._runner_lock.run_when_held(self._run_jobs)
        log.info("fleet service started (holder %s)", self.holder)

    def _run_jobs(self) -> None:
        """Start the scheduler with every job registered so far (later ones join it directly)."""
        with self._lock:
            if not self.started:
                return
            self.runs_jobs = True
            jobs = list(self._jobs)
        for name, seconds, func in jobs:
            self._add_job(name, seconds, func)
        # Once per start, in the background: the original dashboard's logs/fleet_state.json next to
        # a new store is offered to `dashfleet migrate`, never silently ignored.
        self.engine.later(0.0, lambda: offer_migration(self.settings, self.storage, self.self_machine_id),
                          job_id="legacy-state-check")
        self.engine.start()
        log.info("running the scheduled jobs here (%d jobs)", len(jobs))

    def stop(self) -> None:
        """Stop the jobs (waiting for a running one), hand the job-runner lock on, run `shutdown`
        hooks, close storage."""
        with self._lock:
            was_started, was_running = self.started, self.runs_jobs
            self.started = self.runs_jobs = False
        if self._runner_lock is not None:
            self._runner_lock.release()  # first: its waiting thread must not start the jobs now
            self._runner_lock = None
        self.engine.stop()
        if was_running:
            self._hand_over_leases()
        if was_started:
            self.engine.shutdown()
        self.storage.close()
