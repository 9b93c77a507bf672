"""Alerting: health transitions, silent machines and maintenance become events, and events become
a few messages for people.

The server's :class:`~dashfleet_core.fleet.Fleet` owns one :class:`Alerting` (``fleet.alerting``:
callers reach it there) and registers it as a plugin for its hooks. It works in two places, and
neither is the request that brought the report:

- ``report_stored`` (called after a report was committed) feeds the transition tracker
  (:mod:`.tracker`: sustain and hysteresis) and stores an event when the tracked status
  changes or a silent machine is back. Nothing changed (the common case) costs one small read
  per request: ``Fleet.store`` wraps a batch's calls in ``batch``, which reads every state at once.
- a job that runs about every second, once per deployment (``fleet.schedule``), finds machines that
  went silent, starts and ends maintenance windows, and delivers the outbox (:mod:`.delivery`).

Everything lives in storage (kv namespaces below and the events table), so several server
processes agree and a restart loses nothing.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote

from ..hookspecs import hookimpl
from ..models import DEFAULT_ORG, Event, Health, Report, status_rank, utcnow
from ..storage import StorageFull
from . import maintenance as maint
from . import tracker
from .delivery import ANNOUNCED, Delivery, load_notifiers
from .maintenance import SEEN_WINDOWS
from .messages import human_seconds
from .tracker import STATE

if TYPE_CHECKING:
    from ..fleet import Fleet

log = logging.getLogger(__name__)


class Alerting:
    """The alerting service of one server process (a pluggy plugin; see the module docstring)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.settings = fleet.settings
        self.delivery = Delivery(self)
        # Check the notifiers' settings now, so a bad WEBHOOK_URL stops the server at start-up
        # (ConfigError, exit 2) instead of failing every delivery later.
        load_notifiers(fleet.pm, fleet.settings)
        self._tick_lock = threading.Lock()
        self._last_silence_sweep: datetime | None = None
        self._batch = threading.local()  # see `batch`

    @property
    def storage(self):
        return self.fleet.storage

    # --- hooks ---------------------------------------------------------------------------------

    @hookimpl
    def startup(self, engine) -> None:
        """Schedule the alert job: silence sweep, maintenance windows and delivery, once per deployment."""
        self.fleet.schedule("alerting", self.settings.alerts.interval_seconds, self.tick)

    @hookimpl
    def report_stored(self, report: Report, health: Health, org: str) -> None:
        self.observe(report, health, org)

    # --- reports -------------------------------------------------------------------------------

    @contextmanager
    def batch(self, machine_ids: list[str], org: str = DEFAULT_ORG) -> Iterator[None]:
        """Read the tracker state of every machine of a batch of reports at once, for the
        `report_stored` calls made inside (on this thread): one read per request, not per report.
        `observe` keeps the read state up to date with what it writes."""
        self._batch.states = (org, self.storage.kv_get_many(STATE, machine_ids, org=org), set(machine_ids))
        try:
            yield
        finally:
            self._batch.states = None

    def _state(self, machine_id: str, org: str) -> dict[str, Any] | None:
        prefetched = getattr(self._batch, "states", None)
        if prefetched is not None and prefetched[0] == org and machine_id in prefetched[2]:
            return prefetched[1].get(machine_id)
        return self.storage.kv_get(STATE, machine_id, org=org)

    def _state_written(self, machine_id: str, org: str, state: dict[str, Any] | None) -> None:
        prefetched = getattr(self._batch, "states", None)
        if prefetched is not None and prefetched[0] == org and machine_id in prefetched[2]:
            if state:
                prefetched[1][machine_id] = state
            else:
                prefetched[1].pop(machine_id, None)

    def observe(self, report: Report, health: Health, org: str = DEFAULT_ORG) -> list[Event]:
        """Feed one stored report to the tracker; store and return the events it caused."""
        old = self._state(report.machine_id, org)
        result = tracker.step(old, report, health, self.settings.health)
        state = result.state
        events: list[Event] = []
        if old and old.get("silent"):
            state.pop("silent", None)
            since = old.get("silent_since")
            events.append(self._event(
                org, report.machine_id, "back", status=result.status, previous=result.previous,
                score=health.score, reasons=result.reasons, hostname=report.hostname,
                silent_for=human_seconds((utcnow() - datetime.fromisoformat(since)).total_seconds())
                if since else None,
            ))
        if result.changed:
            events.append(self._event(
                org, report.machine_id, "status_changed", status=result.status,
                previous=result.previous, score=health.score, reasons=result.reasons,
                hostname=report.hostname, collected_at=report.collected_at.isoformat(),
            ))
        if state != (old or {}):
            if state:
                self.storage.kv_put(STATE, report.machine_id, state, org=org)
            elif old is not None:
                self.storage.kv_delete(STATE, report.machine_id, org=org)
            self._state_written(report.machine_id, org, state)
        return [self.storage.add_event(e) for e in events]

    # --- the job -------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> None:
        """One run of the alert job. Safe to call by hand (tests, `dashfleet notify`)."""
        with self._tick_lock:
            now = now or utcnow()
            steps = [("sweep_maintenance", self.sweep_maintenance_all), ("delivery", self.delivery.run)]
            if self._last_silence_sweep is None or \
                    (now - self._last_silence_sweep).total_seconds() >= self.silence_every():
                self._last_silence_sweep = now
                steps.insert(1, ("sweep_silent", self.sweep_silent_all))
            for name, step in steps:
                try:
                    step(now)
                except StorageFull as exc:  # says itself what to do; no traceback every tick
                    log.error("alerting: %s failed; it runs again next tick: %s", name, exc)
                except Exception:
                    log.exception("alerting: %s failed; it runs again next tick", name)

    def silence_every(self) -> float:
        """Seconds between silence sweeps: reading the whole fleet every tick would cost more than
        it tells, so sweep a twentieth of the TTL apart (at most 10 s, at least one tick)."""
        return min(10.0, max(self.settings.alerts.interval_seconds, self.settings.server.ttl_seconds / 20))

    def org_ids(self) -> list[str]:
        """Every organisation the sweeps look at (`default` first), read from storage on each run
        so an organisation created on another server process is swept by the next tick."""
        from ..accounts.orgs import Orgs

        return [org.id for org in Orgs(self.storage).list()]

    def sweep_silent_all(self, now: datetime) -> list[Event]:
        """`sweep_silent` in every organisation; one organisation's failure does not skip the others."""
        return self._each_org(self.sweep_silent, now)

    def sweep_maintenance_all(self, now: datetime) -> None:
        """`sweep_maintenance` in every organisation (each one's windows cover its own machines only)."""
        self._each_org(self.sweep_maintenance, now)

    def _each_org(self, sweep, now: datetime) -> list[Event]:
        """Run a sweep for each organisation. The first failure is raised once all were swept (the
        tick logs it as usual); any further one is logged here, naming its organisation."""
        found: list[Event] = []
        failed: Exception | None = None
        for org in self.org_ids():
            try:
                found += sweep(now, org) or []
            except Exception as exc:
                if failed is None:
                    failed = exc
                else:
                    log.error("alerting: a sweep of organisation %r failed too: %s: %s", org,
                              type(exc).__name__, exc)
        if failed is not None:
            raise failed
        return found

    def sweep_silent(self, now: datetime, org: str = DEFAULT_ORG) -> list[Event]:
        """Mark machines silent whose last report is older than the TTL (once per silence)."""
        ttl = self.settings.server.ttl_seconds
        cutoff = now - timedelta(seconds=ttl)
        states = self.storage.kv_list(STATE, org=org)
        events = []
        for machine in self.storage.machines(org=org):
            if machine.last_seen >= cutoff or states.get(machine.machine_id, {}).get("silent"):
                continue
            # Re-read both right before writing: a report may have arrived since the list was made.
            fresh = self.storage.machine(machine.machine_id, org=org)
            state = self.storage.kv_get(STATE, machine.machine_id, org=org) or {}
            if fresh is None or fresh.last_seen >= cutoff or state.get("silent"):
                continue
            state.update(silent=True, silent_since=fresh.last_seen.isoformat())
            self.storage.kv_put(STATE, machine.machine_id, state, org=org)
            event = self._event(
                org, machine.machine_id, "silent", status=tracker.status_of(state),
                previous=tracker.status_of(state), score=fresh.health.score,
                hostname=fresh.hostname, last_seen=fresh.last_seen.isoformat(), ttl_seconds=ttl,
                at=now,
            )
            events.append(self.storage.add_event(event))
        if events:
            log.info("alerting: %d machine(s) of organisation %r went silent", len(events), org)
        return events

    def sweep_maintenance(self, now: datetime, org: str = DEFAULT_ORG) -> None:
        """Store maintenance_started / maintenance_ended for windows that began or ended."""
        active = maint.active_windows(self.storage, self.settings.alerts.maintenance, now, org)
        seen = self.storage.kv_list(SEEN_WINDOWS, org=org)
        for key, window in active.items():
            if key not in seen:
                self._window_started(org, key, window, now)
        for key, window in seen.items():
            if key not in active:
                self.end_window(org, key, window, now)

    # --- maintenance (the API and the job) -----------------------------------------------------

    def start_maintenance(self, machine_id: str, until: datetime, *, reason: str = "", by: str = "",
                          note: str = "", org: str = DEFAULT_ORG) -> dict[str, Any]:
        """Open (or extend) a window for a machine or the fleet (`*`); stored so every process sees it.
        `by` is who acted (a credential); `note` a name the caller gave, kept beside it."""
        now = utcnow()
        value = {"until": until.isoformat(), "reason": reason, "by": by, "since": now.isoformat()}
        if note:
            value["note"] = note
        self.storage.kv_put(maint.NAMESPACE, machine_id, value, org=org, expires_at=until)
        self._window_started(org, machine_id, {**value, "machine": machine_id}, now)
        return value

    def end_maintenance(self, machine_id: str, *, by: str = "", note: str = "",
                        org: str = DEFAULT_ORG) -> bool:
        """End a stored window now; False if there was none."""
        existed = self.storage.kv_delete(maint.NAMESPACE, machine_id, org=org)
        window = self.storage.kv_get(SEEN_WINDOWS, machine_id, org=org)
        if window is not None:
            ended = {**window, "ended_by": by, **({"ended_note": note} if note else {})}
            self.end_window(org, machine_id, ended, utcnow())
        return existed

    def _window_started(self, org: str, key: str, window: dict[str, Any], now: datetime) -> None:
        first = self.storage.kv_get(SEEN_WINDOWS, key, org=org) is None
        self.storage.kv_put(SEEN_WINDOWS, key, window, org=org)
        if first:
            scope = "the whole fleet" if window["machine"] == maint.FLEET else window["machine"]
            self.storage.add_event(Event(
                org=org, machine_id=window["machine"], kind="maintenance_started", at=now,
                message=f"maintenance of {scope} until {window['until']}"
                        + (f": {window['reason']}" if window.get("reason") else ""),
                details={k: window.get(k) for k in ("until", "reason", "by")}
                        | ({"note": window["note"]} if window.get("note") else {}) | {"window": key},
            ))

    def end_window(self, org: str, key: str, window: dict[str, Any], now: datetime) -> None:
        """A window ended: tell people only about machines still bad that they were not told of."""
        if not self.storage.kv_delete(SEEN_WINDOWS, key, org=org):
            return  # another caller ended it first
        machine = window["machine"]
        still = maint.active_windows(self.storage, self.settings.alerts.maintenance, now, org)
        scope_ids = self._scope(org, machine)
        bad = []
        for machine_id in scope_ids:
            if maint.covering(still, machine_id) is not None:
                continue  # still covered by another window
            state = self.storage.kv_get(STATE, machine_id, org=org) or {}
            current = "silent" if state.get("silent") else tracker.status_of(state)
            announced = self.storage.kv_get(ANNOUNCED, machine_id, org=org) or {}
            told = announced.get("status", "ok")
            if current == told:
                continue
            if status_rank(current) > 0:
                reasons = self._reasons_now(org, machine_id, current)
                bad.append({"machine_id": machine_id, "status": current, "reasons": reasons,
                            "link": self.link(machine_id), "was": told})
            # What people know is now the current state (a recovery is not announced).
            self.storage.kv_put(ANNOUNCED, machine_id, {**announced, "status": current}, org=org)
        scope = "the whole fleet" if machine == maint.FLEET else machine
        self.storage.add_event(Event(
            org=org, machine_id=machine, kind="maintenance_ended", at=now,
            message=f"maintenance of {scope} ended; {len(bad)} machine(s) still bad",
            details={"window": key, "bad": bad, "notify": bool(bad), "by": window.get("ended_by", "")},
        ))

    def _scope(self, org: str, machine: str) -> list[str]:
        if machine != maint.FLEET:
            return [machine]
        return [m.machine_id for m in self.storage.machines(org=org)]

    def _reasons_now(self, org: str, machine_id: str, current: str) -> list[str]:
        if current == "silent":
            return ["no report for longer than the TTL"]
        state = self.storage.machine(machine_id, org=org)
        return [f.message for f in state.health.findings] if state else []

    def maintenance_for(self, machine_id: str, org: str = DEFAULT_ORG,
                        now: datetime | None = None) -> dict[str, Any] | None:
        """The window covering a machine now, or None."""
        windows = maint.active_windows(self.storage, self.settings.alerts.maintenance, now or utcnow(), org)
        return maint.covering(windows, machine_id)

    # --- helpers -------------------------------------------------------------------------------

    def link(self, machine_id: str) -> str:
        """The machine's page, for people reading the message."""
        server = self.settings.server
        base = server.public_url or f"http://{server.host}:{server.port}"
        return f"{base.rstrip('/')}/fleet/{quote(machine_id, safe='')}"

    def _event(self, org: str, machine_id: str, kind: str, *, status: str, previous: str | None,
               score: int | None, at: datetime | None = None, reasons: list[str] | None = None,
               **details: Any) -> Event:
        """Build an event with what a message needs later, noting a maintenance window in force."""
        at = at or utcnow()
        window = self.maintenance_for(machine_id, org, at)
        info = {k: v for k, v in details.items() if v is not None}
        info.update(reasons=reasons or [], link=self.link(machine_id))
        if window is not None:
            info["maintenance"] = {"until": window["until"], "reason": window.get("reason", "")}
        words = {"status_changed": f"{previous} -> {status}", "silent": "silent", "back": f"back, {status}"}
        return Event(org=org, machine_id=machine_id, kind=kind, at=at, previous=previous,
                     status=status, score=score, message=f"{machine_id}: {words[kind]}", details=info)
