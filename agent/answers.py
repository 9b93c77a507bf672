"""What a server's answer means for the spool. Only a DashFleet acknowledgement removes reports.

A captive portal answering `200 text/html`, a proxy's empty 200 or its 413 error page look like
success or like a verdict on the report, and trusting them loses reports. So an answer counts only
when it is the report API's own JSON (Content-Type application/json) with the expected fields:

- one report: `stored` (bool), and `machine_id` and `seq` equal to what was sent;
- a batch: `results` with one item per report sent, each `index` equal to its position and `ok` a
  bool; `ok: false` items carry `error` (rejected as invalid) or `conflict: true` and `last_seq`;
- 409 for one report: `{"error": ..., "last_seq": N}`, the seq is stored with other content;
- 400/413/422 for one report: `{"error": ...}` (dead-lettered as invalid).

Anything else is retried with backoff; its message shows the status, the content type and the first
200 characters of the body, escaped (an answer can hold terminal control sequences).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .backoff import parse_retry_after
from .spool import Item

# delivered: the server's verdict per report (acknowledged, rejected, or in conflict).
# retry: server down/busy, or an answer that is not the server's: try later with backoff.
# blocked: the agent's configuration is wrong (token, machine key, URL, certificate): wait long.
# split: the batch as a whole was refused (too large, not understood): resend item by item.
Kind = Literal["delivered", "retry", "blocked", "split"]

SNIPPET_CHARS = 200


@dataclass
class Reply:
    """One HTTP answer as read (the body capped by the sender: a hostile answer cannot fill memory)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    url: str


@dataclass
class Conflict:
    """The server holds `item.seq` with other content; its highest seq for the machine is `last_seq`."""

    item: Item
    last_seq: int
    error: str


@dataclass
class Answer:
    kind: Kind
    acked: list[int] = field(default_factory=list)
    rejected: list[tuple[Item, str, list[str]]] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    status: int | None = None
    retry_after: float | None = None
    message: str = ""
    # What kind of failure this is, for logging it once: the message may vary from try to try.
    problem: str = ""

    def __post_init__(self) -> None:
        if not self.problem:
            self.problem = self.message


def interpret(resp: Reply, items: list[Item], url: str) -> Answer:
    """Turn one HTTP answer to the reports `items` into an `Answer`."""
    status = resp.status_code
    doc = _dashfleet_json(resp)
    error = _escape(doc["error"][:300]) if doc is not None and isinstance(doc.get("error"), str) else None
    said = f": {error}" if error else ""
    if 200 <= status < 300:
        return _acknowledgement(resp, doc, items)
    if status in (429, 503):
        return Answer("retry", status=status, retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                      message=f"server busy (HTTP {status}){said or _shown(resp)}", problem=f"busy {status}")
    if status >= 500:
        return Answer("retry", status=status, message=f"server error (HTTP {status}){said or _shown(resp)}",
                      problem=f"server error {status}")
    if status == 408:  # the server gave up waiting for the request to arrive (a slow link): transient
        return Answer("retry", status=status, message=(
            f"the server timed out receiving the report (HTTP 408){said or _shown(resp)}; "
            "it stays in the spool and is sent again"), problem="timeout 408")
    if status == 401:
        return Answer("blocked", status=status, message=(
            f"the server refused the agent's token (HTTP {status}{said}); "
            "check --token-file / --token / [agent] token_file against the server's FLEET_TOKEN. "
            "Reports stay in the spool and are sent once the token is accepted"))
    if status == 403:
        return Answer("blocked", status=status, message=(
            f"the server refused the agent's reports (HTTP 403{said or _shown(resp)}); the token or this "
            "machine's key (machine.key in the state folder) is not accepted. "
            "Reports stay in the spool and are sent once the server accepts them"))
    if status == 409 and len(items) == 1 and error is not None:
        return _single_conflict(doc, error, items[0], resp)
    if status in (400, 409, 413, 422):
        if len(items) > 1:
            # Sent one at a time, each report gets an answer of its own; nothing is dead-lettered here.
            return Answer("split", status=status, message=f"batch refused (HTTP {status}{said or _shown(resp)})")
        if error is None:
            return _not_dashfleet(resp, f"an HTTP {status} answer without the server's JSON error")
        return Answer("delivered", status=status, rejected=[(items[0], f"HTTP {status}: {error}", _fields(doc))],
                      message=f"report seq {items[0].seq} rejected (HTTP {status}): {error}")
    if 300 <= status < 400:
        where = _escape(resp.headers.get("Location", "?")[:300])
        return Answer("blocked", status=status, message=(
            f"the server answered HTTP {status} redirecting to {where}: set --server to the "
            "server's final base URL (for example https:// instead of http://)"))
    return Answer("blocked", status=status, message=(
        f"the server answered HTTP {status} to POST {url}{said or _shown(resp)}; "
        "check --server: it is the DashFleet server's base URL, e.g. https://dashfleet.example.org"))


def _acknowledgement(resp: Reply, doc: dict[str, Any] | None, items: list[Item]) -> Answer:
    if doc is None:
        return _not_dashfleet(resp, "not the server's JSON")
    if len(items) == 1:
        return _single_ack(resp, doc, items[0])
    results = doc.get("results")
    if not isinstance(results, list) or len(results) != len(items):
        return _not_dashfleet(resp, f"no result for each of the {len(items)} reports sent")
    answer = Answer("delivered", status=resp.status_code)
    for position, (item, result) in enumerate(zip(items, results)):
        if not isinstance(result, dict) or not _is_int(result.get("index")) or result["index"] != position \
                or not isinstance(result.get("ok"), bool):
            return _not_dashfleet(resp, f"result {position} is not {{\"index\": {position}, \"ok\": true|false}}")
        if result["ok"]:
            answer.acked.append(item.seq)
        elif result.get("conflict") is True:
            conflict = _conflict(result.get("last_seq"), result.get("error"), item)
            if conflict is None:
                return _not_dashfleet(resp, f"result {position} is a conflict without a usable last_seq")
            answer.conflicts.append(conflict)
        elif isinstance(result.get("error"), str):
            answer.rejected.append((item, _escape(result["error"][:300]), _fields(result)))
        else:
            return _not_dashfleet(resp, f"result {position} refuses the report without an error")
    return answer


def _single_ack(resp: Reply, doc: dict[str, Any], item: Item) -> Answer:
    sent = _sent(item)
    if not isinstance(doc.get("stored"), bool):
        return _not_dashfleet(resp, "no \"stored\": true|false")
    if doc.get("machine_id") != sent.get("machine_id") or not _is_int(doc.get("seq")) or doc["seq"] != item.seq:
        return _not_dashfleet(resp, f"it does not acknowledge machine {sent.get('machine_id')!r} seq {item.seq}")
    return Answer("delivered", status=resp.status_code, acked=[item.seq])


def _single_conflict(doc: dict[str, Any], error: str, item: Item, resp: Reply) -> Answer:
    conflict = _conflict(doc.get("last_seq"), error, item)
    if conflict is None:
        return _not_dashfleet(resp, "a conflict without a usable last_seq")
    return Answer("delivered", status=409, conflicts=[conflict])


def _conflict(last_seq: Any, error: Any, item: Item) -> Conflict | None:
    """A conflict names the machine's highest stored seq; it cannot be below the seq in conflict."""
    if not _is_int(last_seq) or last_seq < item.seq:
        return None
    return Conflict(item, last_seq, _escape(str(error or "conflict")[:300]))


def _not_dashfleet(resp: Reply, why: str) -> Answer:
    ctype = resp.headers.get("Content-Type") or "no Content-Type"
    return Answer("retry", status=resp.status_code, problem=f"not an acknowledgement {resp.status_code} {_media(resp)}",
                  message=(f"the answer to POST {resp.url} is not a DashFleet acknowledgement (HTTP "
                           f"{resp.status_code}, {_escape(ctype[:100])}, {why}){_shown(resp)}; is a proxy or "
                           "a captive portal in the way? The reports stay in the spool"))


def _dashfleet_json(resp: Reply) -> dict[str, Any] | None:
    """The body as a JSON object if the server said it is JSON, else None."""
    if _media(resp) != "application/json":
        return None
    try:
        doc = json.loads(resp.content)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _media(resp: Reply) -> str:
    return (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _shown(resp: Reply) -> str:
    """`: <the first 200 characters of the body, escaped>`, or nothing for an empty body."""
    text = resp.content[: SNIPPET_CHARS * 4].decode("utf-8", "replace")
    if not text.strip():
        return ": (empty body)"
    more = "…" if len(text) > SNIPPET_CHARS or len(resp.content) > SNIPPET_CHARS * 4 else ""
    return f": {_escape(text[:SNIPPET_CHARS])}{more}"


def _escape(text: str) -> str:
    """Control characters (line breaks, terminal escapes) as Python escapes: one log line, no tricks."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _fields(doc: dict[str, Any]) -> list[str]:
    """The field names the server blamed (at most 50, escaped: they go to the log and dead letters)."""
    fields = doc.get("fields")
    return [_escape(str(f)[:200]) for f in fields[:50]] if isinstance(fields, list) else []


def _sent(item: Item) -> dict[str, Any]:
    try:
        doc = json.loads(item.body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = ["Answer", "Conflict", "Kind", "interpret"]
