"""One POST of reports to the server; `answers` says what its answer means for the spool.

The sender does not retry or sleep: it turns each HTTP exchange into an `Answer` (which reports
are acknowledged, rejected as invalid or in conflict, and whether and when to try again) and the
runner acts on it. The body is sent as the spool stored it: a single report as one JSON object,
a batch as a JSON list. Every request carries the fleet token and this machine's key.
"""

from __future__ import annotations

import json

import requests

from .answers import Answer, Reply, interpret
from .machine_key import HEADER as MACHINE_KEY_HEADER
from .spool import Item

REPORT_PATH = "/api/fleet/report"
ACCEPTS_HEADER = "X-DashFleet-Accepts"  # the optional report fields this server takes
OPTIONAL_FIELDS = ("collector_failures",)
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
# The server's answer to a batch of 500 is about 40 kB; read no more than this of any answer.
MAX_ANSWER_BYTES = 1024 * 1024


def report_url(server: str) -> str:
    """`https://host:port` (or with a path prefix) -> the report endpoint; a full URL is kept."""
    base = server.strip().rstrip("/")
    if base.endswith(REPORT_PATH):
        return base
    return base + REPORT_PATH


class Sender:
    """POSTs to the server's report endpoint over one keep-alive session."""

    def __init__(self, server: str, token: str, *, machine_key: str, ca_bundle: str | None = None,
                 verify_tls: bool = True):
        self.url = report_url(server)
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {token}",
            MACHINE_KEY_HEADER: machine_key,
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
        # Optional report fields the server said it takes (its X-DashFleet-Accepts header); until it
        # has said so they are left out, since an older server refuses fields it does not know.
        self.accepts: frozenset[str] = frozenset()

    def close(self) -> None:
        self.session.close()

    def send(self, items: list[Item]) -> Answer:
        bodies = [self._fit(item.body) for item in items]
        body = bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]"
        try:
            resp = self.session.post(self.url, data=body, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                     allow_redirects=False, verify=self.verify, stream=True)
            try:
                reply = Reply(resp.status_code, resp.headers, _read_capped(resp), self.url)
            finally:
                resp.close()
            said = resp.headers.get(ACCEPTS_HEADER)
            if said is not None:
                self.accepts = frozenset(f.strip() for f in said.split(",") if f.strip() in OPTIONAL_FIELDS)
        except requests.exceptions.SSLError as exc:
            return Answer("blocked", message=self._tls_message(exc))
        except requests.exceptions.InvalidURL as exc:
            return Answer("blocked", message=f"the server URL {self.url!r} is not valid: {exc}")
        except requests.exceptions.RequestException as exc:
            return Answer("retry", message=f"cannot reach {self.url}: {_short(exc)}")
        return interpret(reply, items, self.url)

    def _fit(self, body: bytes) -> bytes:
        """The report as this server takes it: optional fields it has not said it takes left out."""
        missing = [f for f in OPTIONAL_FIELDS if f not in self.accepts and f'"{f}"'.encode() in body]
        if not missing:
            return body
        doc = json.loads(body)
        for name in missing:
            doc.pop(name, None)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _tls_message(self, exc: Exception) -> str:
        detail = _short(exc)
        hint = ("set [agent] ca_bundle / --ca-bundle to the PEM file of the CA that signed the "
                "server's certificate" if not self.ca_bundle else
                f"check that {self.ca_bundle} holds the CA that signed the server's certificate and "
                "that the certificate names the host in --server")
        return f"TLS certificate problem talking to {self.url}: {detail}; {hint}"


def _read_capped(resp: requests.Response) -> bytes:
    """At most MAX_ANSWER_BYTES (+ one chunk) of the body: enough to see it is not an acknowledgement."""
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)


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
    """The JSON body of one report, as the server's schema expects it (an empty optional field
    left out, so a server that does not know it is never sent it)."""
    empty = {name for name in OPTIONAL_FIELDS if not getattr(report, name, None)}
    return report.model_dump_json(exclude=empty or None).encode("utf-8")


def renumbered_body(body: bytes, seq: int) -> bytes:
    """The same report under another `seq` (after a conflict); every other field is kept as is."""
    doc = json.loads(body)
    doc["seq"] = seq
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


__all__ = ["Answer", "Sender", "report_url", "dumps_report", "renumbered_body"]
