"""Words for people: the title and text of a notification, one machine or a digest of many.

Events carry what a message needs in ``details`` (hostname, reasons, link, last seen), so a message can
be written long after the event, by any server process. Everything an agent supplied (machine id,
hostname, finding messages) enters the text through `_agent()` / `_reasons()`: no control or bidi
characters, length capped. Each notifier then escapes the whole message for its target
(`dashfleet_core.text.render`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..models import DEFAULT_ORG, Event, Notification, status_rank
from ..text import clean

LABEL = {"ok": "OK", "warn": "WARN", "critical": "CRITICAL", "silent": "SILENT"}

# How much of each agent-supplied piece a message shows; the dashboard link shows the rest.
MAX_NAME_SHOWN = 100
MAX_REASON_SHOWN = 300
MAX_REASONS_SHOWN = 10


def target_of(event: Event) -> str:
    """What the event says the machine is now: ok / warn / critical / silent."""
    if event.kind == "silent":
        return "silent"
    return event.status or "ok"


def name_of(event: Event) -> str:
    """`machine-id (hostname)`, both as safe text, and its organisation when it is not `default`
    (every organisation's alerts reach the same notifiers: the same id may be two machines)."""
    machine = _agent(event.machine_id)
    host = _agent(event.details.get("hostname") or "")
    name = f"{machine} ({host})" if host and host != machine else machine
    return name + org_suffix(event)


def org_suffix(event: Event) -> str:
    """` in organisation <id>` for an event of an organisation other than `default`, else ``."""
    return "" if event.org == DEFAULT_ORG else f" in organisation {_agent(event.org)}"


def _agent(text: object) -> str:
    """One piece of agent text as it may enter a message: one line, no controls or bidi, capped."""
    return clean(text, MAX_NAME_SHOWN)


def _reasons(reasons: list | None) -> str:
    """Finding messages joined with `; `, each cleaned and capped, at most MAX_REASONS_SHOWN."""
    items = [clean(r, MAX_REASON_SHOWN) for r in (reasons or [])]
    shown = items[:MAX_REASONS_SHOWN]
    if len(items) > len(shown):
        shown.append(f"and {len(items) - len(shown)} more")
    return "; ".join(shown)


def describe(event: Event, previous: str) -> tuple[str, str]:
    """(title, one-paragraph text) for one machine's event, given what people were told before."""
    who = name_of(event)
    machine = _agent(event.machine_id) + org_suffix(event)
    target = target_of(event)
    reasons = _reasons(event.details.get("reasons"))
    score = f", health {event.score}/100" if event.score is not None else ""
    if event.kind == "silent":
        ago = _ago(event.details.get("last_seen"), event.at)
        title = f"[SILENT] {machine}"
        text = (f"{who} is SILENT: no report for {ago} (last seen {_clock(event.details.get('last_seen'))}, "
                f"allowed {event.details.get('ttl_seconds', '?')} s).")
    elif event.kind == "back":
        title = f"[BACK] {machine} is {LABEL[target]}"
        text = f"{who} is reporting again after {event.details.get('silent_for', 'a silence')}; " \
               f"status {LABEL[target]}{score}."
        if reasons and target != "ok":
            text += f" {reasons}."
    elif status_rank(target) < status_rank(previous):
        title = f"[RECOVERED] {machine} is {LABEL[target]}"
        text = f"{who} is {LABEL[target]} again (was {LABEL.get(previous, previous)}){score}."
        if reasons:
            text += f" Still: {reasons}."
    else:
        title = f"[{LABEL[target]}] {machine}"
        was = f" (was {LABEL.get(previous, previous)})" if previous else ""
        text = f"{who} is {LABEL[target]}{was}{score}." + (f" {reasons}." if reasons else "")
        if event.details.get("reminder"):
            text += " It is still in this state."
    if event.details.get("maintenance_ended"):
        text = f"Maintenance ended and the machine is still bad: {text}"
    return title, text


def single(event: Event, previous: str) -> Notification:
    title, text = describe(event, previous)
    link = event.details.get("link")
    if link:
        text += f" {link}"
    return Notification(title=title, text=text, events=[event], link=link)


def digest(items: list[tuple[Event, str]], window: float) -> Notification:
    """One message for many machines that changed inside one digest window."""
    counts: dict[str, int] = {}
    for event, previous in items:
        word = _word(event, previous)
        counts[word] = counts.get(word, 0) + 1
    summary = ", ".join(f"{n} {w}" for w, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    title = f"[DashFleet] {len(items)} machines changed: {summary}"
    lines = [f"{len(items)} machines changed within {window:g} s ({summary}):"]
    for event, previous in sorted(items, key=lambda it: (-status_rank(target_of(it[0])), it[0].machine_id)):
        lines.append(f"- {describe(event, previous)[1]}")
    return Notification(title=title, text="\n".join(lines), events=[e for e, _ in items])


def maintenance_ended(event: Event) -> Notification:
    bad = event.details.get("bad", [])
    scope = ("the whole fleet" if event.machine_id == "*" else _agent(event.machine_id)) + org_suffix(event)
    lines = [f"Maintenance of {scope} ended; {len(bad)} machine(s) still need attention:"]
    for item in bad:
        reasons = _reasons(item.get("reasons"))
        lines.append(f"- {_agent(item['machine_id'])} is {LABEL.get(item['status'], item['status'])}"
                     + (f": {reasons}" if reasons else "") + (f" {item['link']}" if item.get("link") else ""))
    return Notification(title=f"[DashFleet] maintenance ended{org_suffix(event)}, {len(bad)} machine(s) still bad",
                        text="\n".join(lines), events=[event])


def structured(notification: Notification) -> dict[str, Any]:
    """The machine-readable part of a message: one entry per machine, and the first one flat."""
    machines = []
    for event in notification.events:
        if event.kind.startswith("maintenance"):
            for item in event.details.get("bad", []):
                machines.append({"machine": item["machine_id"], "status": item["status"],
                                 "score": item.get("score"), "reasons": item.get("reasons", []),
                                 "link": item.get("link"), "event": event.kind})
            continue
        machines.append({
            "machine": event.machine_id, "hostname": event.details.get("hostname", ""),
            "status": target_of(event), "previous": event.previous, "score": event.score,
            "reasons": event.details.get("reasons", []), "link": event.details.get("link"),
            "event": event.kind, "event_id": event.id, "at": event.at.isoformat(),
        })
    data: dict[str, Any] = {"title": notification.title, "test": notification.test,
                            "digest": len(machines) > 1, "machines": machines}
    if machines:
        first = machines[0]
        data.update({k: first.get(k) for k in ("machine", "status", "score", "reasons", "link")})
    return data


def links_of(notification: Notification) -> list[str]:
    """The dashboard links DashFleet put in a message: escaping leaves them clickable."""
    found = [notification.link] if notification.link else []
    for event in notification.events:
        found.append(event.details.get("link"))
        found.extend(item.get("link") for item in event.details.get("bad", []) if isinstance(item, dict))
    return [link for link in dict.fromkeys(found) if isinstance(link, str) and link]


def _word(event: Event, previous: str) -> str:
    target = target_of(event)
    if event.kind == "back":
        return "back"
    if status_rank(target) < status_rank(previous):
        return "recovered"
    return target


def _ago(last_seen: str | None, now: datetime) -> str:
    if not last_seen:
        return "longer than allowed"
    try:
        seconds = (now - datetime.fromisoformat(last_seen)).total_seconds()
    except (TypeError, ValueError):
        return "longer than allowed"
    return human_seconds(seconds)


def _clock(iso: str | None) -> str:
    """`2026-01-31 12:00:05 UTC` from a stored ISO time (as is if it cannot be read)."""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC") if iso else "?"
    except (TypeError, ValueError):
        return str(iso)


def human_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
