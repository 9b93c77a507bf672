"""From stored events to delivered messages: decide what to say, then say it until it is heard.

Two steps run on every tick of the alert job (once per deployment):

1. **decide** reads the events outbox (``storage.pending_notifications``). It waits until the oldest
   new event is ``digest_window_seconds`` old, so events of a mass outage land in one batch; then per
   machine only the newest event counts, compared with what people were last told (kv
   ``alert_announced``). A worse state is throttled per machine and kind (``WEBHOOK_MIN_SECONDS``):
   it is deferred, and sent later only if the machine is still in that state. A better state (a
   recovery, a machine back) is always sent. Events during maintenance are kept but not sent. Five or
   more messages (``digest_threshold``) become one digest. The messages go to a durable outbox (kv
   ``alert_outbox``) and the events are marked notified.
2. **send** gives each queued message to every configured notifier. A notifier that fails or times out
   is logged and retried with backoff (the others are not sent twice); a message is dropped only
   after ``give_up_hours``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from ..models import DEFAULT_ORG, Event, Notification, status_rank
from ..plugins import call_each, gather
from . import messages, tracker
from .tracker import STATE

log = logging.getLogger(__name__)

ANNOUNCED = "alert_announced"  # per machine: what people were last told, and when each kind was sent
HEALTH_KINDS = ("status_changed", "silent", "back")
OUTBOX = "alert_outbox"
DEFERRED = "alert_deferred"
BATCH = 1000


def load_notifiers(pm, settings) -> dict[str, Any]:
    """The notifiers that are configured: every registered one whose ``configured`` attribute is
    not false (a notifier reads its settings in ``register_notifiers(register, settings)``; one
    left off, e.g. with no WEBHOOK_URL, says so there and stays listed in ``config check``).

    Deprecated, still honoured for third-party notifiers written before settings reached
    ``register_notifiers``: a ``configure(settings)`` method, whose result replaces the
    notifier (None: not configured here)."""
    found: dict[str, Any] = {}
    for name, notifier in gather(pm, "register_notifiers", "notifier", settings=settings).items():
        configure = getattr(notifier, "configure", None)
        if configure is not None:
            log.debug("notifier %r is set up through configure(settings), the former way: read "
                      "settings in register_notifiers(register, settings) instead", name)
            notifier = configure(settings)
        if notifier is not None and getattr(notifier, "configured", True):
            found[name] = notifier
    return found


class Delivery:
    """The outbox side of :class:`dashfleet_core.alerting.service.Alerting` (which it is given,
    so this module never imports the service)."""

    def __init__(self, alerting) -> None:
        self.alerting = alerting
        self._notifiers: dict[str, Any] | None = None

    @property
    def notifiers(self) -> dict[str, Any]:
        if self._notifiers is None:
            self._notifiers = load_notifiers(self.alerting.fleet.pm, self.alerting.settings)
            log.info("alerting: notifiers configured: %s", ", ".join(self._notifiers) or "none")
        return self._notifiers

    @property
    def storage(self):
        return self.alerting.storage

    def run(self, now: datetime) -> None:
        self.decide(now)
        self.send_due(now)

    # --- decide --------------------------------------------------------------------------------

    def decide(self, now: datetime) -> list[Notification]:
        """Turn pending events into queued messages (see the module docstring)."""
        settings = self.alerting.settings.alerts
        pending = self.storage.pending_notifications(limit=BATCH)
        records = [e for e in pending if e.kind not in HEALTH_KINDS and e.kind != "maintenance_ended"]
        if records:  # maintenance_started, actions: history only, nothing to tell
            self.storage.mark_notified([e.id for e in records])
        events = [e for e in pending if e.kind in HEALTH_KINDS or e.kind == "maintenance_ended"]
        fresh = [e for e in events if not e.details.get("maintenance") and
                 (e.kind != "maintenance_ended" or e.details.get("notify"))]
        if fresh and (now - min(e.at for e in fresh)).total_seconds() < settings.digest_window_seconds:
            return []  # let the digest window fill

        groups: dict[tuple[str, str], list[Event]] = {}
        for event in events:
            if event.kind in HEALTH_KINDS:
                groups.setdefault((event.org, event.machine_id), []).append(event)
        items: list[tuple[Event, str]] = []
        for (org, machine_id), evs in groups.items():
            latest = max(evs, key=lambda e: (e.at, e.id or 0))
            if latest.details.get("maintenance"):
                continue
            announced = self.storage.kv_get(ANNOUNCED, machine_id, org=org) or {}
            told = announced.get("status", "ok")
            target = messages.target_of(latest)
            if self.storage.kv_get(DEFERRED, machine_id, org=org) is not None:
                self.storage.kv_delete(DEFERRED, machine_id, org=org)  # superseded by newer news
            if target == told:
                continue
            if status_rank(target) > status_rank(told):
                wait = self._throttled_for(announced, target, now)
                if wait > 0:
                    log.info("alerting: %s is %s again within %g s of the last alert: deferred %.0f s",
                             machine_id, target, settings.min_seconds, wait)
                    self.storage.kv_put(DEFERRED, machine_id, {
                        "event": latest.model_dump(mode="json"),
                        "not_before": (now + timedelta(seconds=wait)).isoformat()}, org=org)
                    continue
            items.append((latest, told))
            self._announce(org, machine_id, announced, target, now)
        for org in self.alerting.org_ids():
            items += self._due_deferred(now, skip=set(groups), org=org)

        notifications = self._compose(items, settings.digest_window_seconds)
        for event in events:
            if event.kind == "maintenance_ended" and event.details.get("notify"):
                notifications.append(messages.maintenance_ended(event))
        for notification in notifications:
            self.enqueue(notification, now)
        if events:
            self.storage.mark_notified([e.id for e in events])
            self._tell_plugins([e for e in events if e.kind in HEALTH_KINDS])
        return notifications

    def _throttled_for(self, announced: dict[str, Any], target: str, now: datetime) -> float:
        last = announced.get("sent", {}).get(target)
        if not last:
            return 0.0
        since = (now - datetime.fromisoformat(last)).total_seconds()
        return max(0.0, self.alerting.settings.alerts.min_seconds - since)

    def _announce(self, org: str, machine_id: str, announced: dict[str, Any], target: str,
                  now: datetime) -> None:
        sent = dict(announced.get("sent", {}))
        sent[target] = now.isoformat()
        self.storage.kv_put(ANNOUNCED, machine_id, {"status": target, "sent": sent}, org=org)

    def _due_deferred(self, now: datetime, skip: set[tuple[str, str]],
                      org: str = DEFAULT_ORG) -> list[tuple[Event, str]]:
        """Deferred alerts whose throttle ran out: sent if the machine is still in that state."""
        items = []
        for machine_id, record in self.storage.kv_list(DEFERRED, org=org).items():
            if (org, machine_id) in skip or datetime.fromisoformat(record["not_before"]) > now:
                continue
            self.storage.kv_delete(DEFERRED, machine_id, org=org)
            event = Event.model_validate(record["event"])
            state = self.storage.kv_get(STATE, machine_id, org=org) or {}
            current = "silent" if state.get("silent") else tracker.status_of(state)
            announced = self.storage.kv_get(ANNOUNCED, machine_id, org=org) or {}
            told = announced.get("status", "ok")
            if current != messages.target_of(event) or current == told:
                continue
            if self.alerting.maintenance_for(machine_id, org, now) is not None:
                continue
            event.details["reminder"] = True
            items.append((event, told))
            self._announce(org, machine_id, announced, current, now)
        return items

    def _compose(self, items: list[tuple[Event, str]], window: float) -> list[Notification]:
        if len(items) >= self.alerting.settings.alerts.digest_threshold:
            return [messages.digest(items, window)]
        return [messages.single(event, told) for event, told in items]

    def _tell_plugins(self, events: list[Event]) -> None:
        for event in events:
            call_each(self.alerting.fleet.pm, "health_changed", {"event": event})

    # --- send ----------------------------------------------------------------------------------

    def enqueue(self, notification: Notification, now: datetime) -> str | None:
        """Queue a message for every configured notifier; returns its outbox key."""
        names = sorted(self.notifiers)
        if not names:
            log.warning("alerting: no notifier is configured, so nobody hears: %s", notification.title)
            return None
        key = f"{now.strftime('%Y%m%dT%H%M%S.%f')}-{uuid.uuid4().hex[:8]}"
        self.storage.kv_put(OUTBOX, key, {
            "notification": notification.model_dump(mode="json"), "pending": names,
            "attempts": 0, "created": now.isoformat(), "next_try": now.isoformat(),
        })
        return key

    def send_due(self, now: datetime) -> int:
        """Send every queued message that is due; returns how many were fully delivered."""
        settings = self.alerting.settings.alerts
        delivered = 0
        for key, record in sorted(self.storage.kv_list(OUTBOX).items()):
            if datetime.fromisoformat(record["next_try"]) > now:
                continue
            notification = Notification.model_validate(record["notification"])
            still, errors = [], []
            for name in record["pending"]:
                notifier = self.notifiers.get(name)
                if notifier is None:
                    log.warning("alerting: notifier %r is no longer configured; dropping its copy of %r",
                                name, notification.title)
                    continue
                try:
                    notifier.send(notification)
                except Exception as exc:
                    still.append(name)
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
            if not still:
                self.storage.kv_delete(OUTBOX, key)
                delivered += 1
                continue
            attempts = record["attempts"] + 1
            age = now - datetime.fromisoformat(record["created"])
            if age > timedelta(hours=settings.give_up_hours):
                log.error("alerting: giving up on %r after %d attempts over %s: %s",
                          notification.title, attempts, age, "; ".join(errors))
                self.storage.kv_delete(OUTBOX, key)
                continue
            delay = min(2.0 ** (attempts - 1), settings.retry_max_seconds)
            log.warning("alerting: could not deliver %r (attempt %d, next in %g s): %s",
                        notification.title, attempts, delay, "; ".join(errors))
            self.storage.kv_put(OUTBOX, key, {
                **record, "pending": still, "attempts": attempts, "last_error": "; ".join(errors),
                "next_try": (now + timedelta(seconds=delay)).isoformat()})
        return delivered
