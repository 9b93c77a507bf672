"""The server-side service: score and store reports, and run the server's jobs once per deployment.

A web host (the `dashfleet web` process, or each gunicorn/waitress worker) builds one `Fleet`. It
holds the settings, the plugin manager, the engine (collectors, health checks, scheduler) and the
storage backend. Request handlers call `ingest`; plugins reach the same object through the app
(`current_app.extensions["dashfleet"]`).

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
from datetime import timedelta
from typing import Any, Callable, Iterable

import pluggy

from .config import Settings
from .engine import Engine, default_machine_id
from .job_runner import JobRunnerLock, lock_path
from .models import DEFAULT_ORG, Health, Report, utcnow
from .plugins import make_plugin_manager
from .storage import Storage, open_storage

log = logging.getLogger(__name__)

RETENTION_EVERY_SECONDS = 3600.0


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
        self._register_alerting()

    def _register_alerting(self) -> None:
        """Alerting is a plugin of this service (events, silence sweep, notifications)."""
        from .alerting import Alerting

        if self.pm.get_plugin("alerting") is None and not self.pm.is_blocked("alerting"):
            self.pm.register(Alerting(self), name="alerting")

    # --- reports -------------------------------------------------------------------------------

    def ingest(self, reports: Iterable[Report], org: str = DEFAULT_ORG) -> list[bool]:
        """Score each report with the server's own thresholds and store it.

        Returns one bool per report: True if stored, False if `(machine_id, seq)` was already
        stored (a duplicate, acknowledged but not stored twice). Storage errors propagate: nothing
        is acknowledged when the save did not commit.
        """
        items = [(report, self.engine.evaluate(report.metrics)) for report in reports]
        return self.store(items, org=org)

    def store(self, items: list[tuple[Report, Health]], org: str = DEFAULT_ORG) -> list[bool]:
        """Store already-scored reports (one transaction), then tell plugins about each one that
        was new."""
        if not items:
            return []
        if len(items) == 1:
            results = [self.storage.save_report(items[0][0], items[0][1], org=org, received_at=utcnow())]
        else:
            results = self.storage.save_reports(items, org=org, received_at=utcnow())
        hook = self.pm.hook.report_stored
        impls = hook.get_hookimpls()
        if impls:
            new = [item for item, stored in zip(items, results) if stored]
            with self._alerting_batch(new):
                for report, health in new:
                    self._notify_stored(impls, report, health)
        return results

    def _alerting_batch(self, items: list[tuple[Report, Health]]):
        """Alerting reads the state of a batch's machines at once (one read per request)."""
        alerting = self.pm.get_plugin("alerting")
        if len(items) < 2 or not hasattr(alerting, "batch"):
            return contextlib.nullcontext()
        return alerting.batch([report.machine_id for report, _ in items])

    @staticmethod
    def _notify_stored(impls, report: Report, health: Health) -> None:
        """Call each `report_stored` plugin on its own: the report is already committed, so one
        plugin's exception must neither skip the others nor turn the answer into an error."""
        kwargs = {"report": report, "health": health}
        for impl in impls:
            try:
                impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception:
                log.exception("plugin %r failed in report_stored", impl.plugin_name)

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
