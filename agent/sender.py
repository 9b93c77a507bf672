"""One POST of reports to the server, and what the answer means for the spool.

The sender does not retry or sleep: it turns each HTTP exchange into an `Answer` (which reports
are acknowledged, which were rejected as invalid, and whether and when to try again) and the
runner acts on it. The body is sent as the spool stored it: a single report as one JSON object,
a batch as a JSON list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import requests

from .backoff import parse_retry_after
from .spool import Item

log = logging.getLogger(__name__)

REPORT_PATH = "/api/fleet/report"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

# retry: server down/busy, try later with backoff (or Retry-After).
# blocked: the agent's configuration is wrong (token, URL, certificate): wait long, log clearly.
# split: the batch as a whole was refused (too large, not understood): resend item by item.
Kind = Literal["delivered", "retry", "blocked", "split"]


@dataclass
class Answer:
    kind: Kind
    acked: list[int] = field(default_factory=list)
    rejected: list[tuple[Item, str, list[str]]] = field(default_factory=list)
    status: int | None = None
    retry_after: float | None = None
    message: str = ""


def report_url(server: str) -> str:
    """`https://host:port` (or with a path prefix) -> the report endpoint; a full URL is kept."""
    base = server.strip().rstrip("/")
    if base.endswith(REPORT_PATH):
        return base
    return base + REPORT_PATH


class Sender:
    """POSTs to the server's report endpoint over one keep-alive session."""

    def __init__(self, server: str, token: str, *, ca_bundle: str | None = None, verify_tls: bool = True):
        self.url = report_url(server)
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": f"dashfleet-agent/{_version()}",
        })
        # Passed with every request: a session-level value would lose to $REQUESTS_CA_BUNDLE.
        self.verify: bool | str = ca_bundle if (verify_tls and ca_bundle) else verify_tls
        if not verify_tls:
            # The host already warned once at start; urllib3 would warn on every POST.
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session.trust_env = True  # honour HTTPS_PROXY / NO_PROXY like other tools on the machine
        self.ca_bundle = ca_bundle

    def close(self) -> None:
        self.session.close()

    def send(self, items: list[Item]) -> Answer:
        if len(items) == 1:
            body = items[0].body
        else:
            body = b"[" + b",".join(i.body for i in items) + b"]"
        try:
            resp = self.session.post(self.url, data=body, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                     allow_redirects=False, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            return Answer("blocked", message=self._tls_message(exc))
        except requests.exceptions.InvalidURL as exc:
            return Answer("blocked", message=f"the server URL {self.url!r} is not valid: {exc}")
        except requests.exceptions.RequestException as exc:
            return Answer("retry", message=f"cannot reach {self.url}: {_short(exc)}")
        try:
            return self._interpret(resp, items)
        finally:
            resp.close()

    def _interpret(self, resp: requests.Response, items: list[Item]) -> Answer:
        status = resp.status_code
        error = _error_text(resp)
        if status in (200, 201):
            return self._accepted(resp, items)
        if status in (429, 503):
            return Answer("retry", status=status, retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                          message=f"server busy (HTTP {status}){': ' + error if error else ''}")
        if status >= 500:
            return Answer("retry", status=status, message=f"server error (HTTP {status}){': ' + error if error else ''}")
        if status == 408:  # the server gave up waiting for the request to arrive (slow link): transient
            return Answer("retry", status=status, message=(
                f"the server timed out receiving the report (HTTP 408){': ' + error if error else ''}; "
                "it stays in the spool and is sent again"))
        if status in (401, 403):
            return Answer("blocked", status=status, message=(
                f"the server refused the agent's token (HTTP {status}{': ' + error if error else ''}); "
                "check --token / DASHFLEET_AGENT_TOKEN / [agent] token against the server's FLEET_TOKEN. "
                "Reports stay in the spool and are sent once the token is accepted"))
        if status in (400, 413, 422):
            if len(items) > 1:
                return Answer("split", status=status, message=f"batch refused (HTTP {status}): {error}")
            fields = _fields(resp)
            return Answer("delivered", status=status, rejected=[(items[0], f"HTTP {status}: {error}", fields)],
                          message=f"report seq {items[0].seq} rejected (HTTP {status}): {error}")
        if 300 <= status < 400:
            where = resp.headers.get("Location", "?")
            return Answer("blocked", status=status, message=(
                f"the server answered HTTP {status} redirecting to {where}: set --server to the "
                "server's final base URL (for example https:// instead of http://)"))
        return Answer("blocked", status=status, message=(
            f"the server answered HTTP {status} to POST {self.url}{': ' + error if error else ''}; "
            "check --server: it is the DashFleet server's base URL, e.g. https://dashfleet.example.org"))

    def _accepted(self, resp: requests.Response, items: list[Item]) -> Answer:
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if len(items) == 1 or not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            if len(items) > 1:
                log.warning("server acknowledged a batch of %d without per-item results; "
                            "taking all as stored", len(items))
            return Answer("delivered", status=resp.status_code, acked=[i.seq for i in items])
        answer = Answer("delivered", status=resp.status_code)
        seen: set[int] = set()
        for result in doc["results"]:
            if not isinstance(result, dict):
                continue
            index = result.get("index")
            if not isinstance(index, int) or not 0 <= index < len(items) or index in seen:
                continue
            seen.add(index)
            item = items[index]
            if result.get("ok"):
                answer.acked.append(item.seq)
            else:
                fields = [str(f) for f in result.get("fields") or []]
                answer.rejected.append((item, str(result.get("error") or "rejected"), fields))
        # Items the server did not mention were not acknowledged: they stay queued and go again.
        return answer

    def _tls_message(self, exc: Exception) -> str:
        detail = _short(exc)
        hint = ("set [agent] ca_bundle / --ca-bundle to the PEM file of the CA that signed the "
                "server's certificate" if not self.ca_bundle else
                f"check that {self.ca_bundle} holds the CA that signed the server's certificate and "
                "that the certificate names the host in --server")
        return f"TLS certificate problem talking to {self.url}: {detail}; {hint}"


def _error_text(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:200].strip() if resp.text else ""
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return doc["error"][:300]
    return ""


def _fields(resp: requests.Response) -> list[str]:
    try:
        doc = resp.json()
    except ValueError:
        return []
    if isinstance(doc, dict) and isinstance(doc.get("fields"), list):
        return [str(f) for f in doc["fields"]][:50]
    return []


def _short(exc: Exception) -> str:
    """The innermost reason of a requests/urllib3 error, one line."""
    inner = exc
    for _ in range(5):
        nxt = getattr(inner, "reason", None) or (inner.args[0] if inner.args and isinstance(inner.args[0], Exception) else None)
        if not isinstance(nxt, Exception) or nxt is inner:
            break
        inner = nxt
    text = str(inner) or type(inner).__name__
    return text.splitlines()[0][:300]


def _version() -> str:
    from dashfleet_core import __version__

    return __version__


def dumps_report(report) -> bytes:
    """The JSON body of one report, as the server's schema expects it."""
    return report.model_dump_json().encode("utf-8")


__all__ = ["Answer", "Sender", "report_url", "dumps_report"]
