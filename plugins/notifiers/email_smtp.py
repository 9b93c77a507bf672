"""Email notifier over SMTP: plain text and HTML, STARTTLS or SSL, credentials from the environment.

On when `[plugins.email] host` and `to` are set. The user and password come from `SMTP_USER` and
`SMTP_PASSWORD` (a `user` in the file is accepted; a password in the file is not, so it never sits
in a config that gets copied around).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dashfleet_core import hookimpl
from dashfleet_core.text import clean, clean_block

PLUGIN_NAME = "email"
MAX_SUBJECT = 200  # characters; mail clients show far fewer, and long headers get folded


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str | None = None
    sender: str = Field(default="dashfleet@localhost", alias="from")
    to: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    subject_prefix: str = ""
    ca_file: str | None = None  # a private CA for the SMTP server's certificate (else the system's)

    @field_validator("to", mode="before")
    @classmethod
    def _list(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c in address for c in "\r\n,;"):
                raise ValueError(f"{address!r} is not one email address; give a list: to = [\"a@x\", \"b@x\"]")
        return value


class EmailNotifier:
    name = PLUGIN_NAME

    def __init__(self, options: EmailSettings | None = None) -> None:
        self.options = options or EmailSettings()

    @property
    def configured(self) -> bool:
        """Off until `[plugins.email] host` and `to` are both set."""
        return bool(self.options.host and self.options.to)

    def message(self, notification):
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        o = self.options
        msg = EmailMessage()
        msg["From"] = o.sender
        msg["To"] = ", ".join(o.to)
        # One line, no control or bidi characters: nothing can start a header of its own.
        msg["Subject"] = clean(f"{o.subject_prefix}{notification.title}", MAX_SUBJECT)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="dashfleet")
        msg.set_content(clean_block(notification.text) + "\n")
        msg.add_alternative(_html(notification), subtype="html")
        return msg

    def send(self, notification) -> None:
        import smtplib
        import ssl

        o = self.options
        assert self.configured, "not configured: [plugins.email] host and to"
        user = os.environ.get("SMTP_USER") or o.user  # read when sending, as before
        password = os.environ.get("SMTP_PASSWORD")
        context = ssl.create_default_context(cafile=o.ca_file)
        if o.security == "ssl":
            client = smtplib.SMTP_SSL(o.host, o.port or 465, timeout=o.timeout_seconds, context=context)
        else:
            client = smtplib.SMTP(o.host, o.port or (587 if o.security == "starttls" else 25),
                                  timeout=o.timeout_seconds)
        with client:
            if o.security == "starttls":
                client.starttls(context=context)
            if user and password:
                client.login(user, password)
            client.send_message(self.message(notification))


def _html(notification) -> str:
    """The same message as HTML; everything that came from an agent is cleaned, then escaped."""
    from html import escape

    from dashfleet_core.alerting.messages import LABEL, MAX_NAME_SHOWN, MAX_REASON_SHOWN, structured

    colour = {"ok": "#2e7d32", "warn": "#ef6c00", "critical": "#c62828", "silent": "#616161"}
    rows = []
    for m in structured(notification)["machines"]:
        link = escape(m.get("link") or "")
        machine = escape(clean(m["machine"], MAX_NAME_SHOWN))
        name = f'<a href="{link}">{machine}</a>' if link else machine
        status = m.get("status") or ""
        reasons = "<br>".join(escape(clean(r, MAX_REASON_SHOWN)) for r in m.get("reasons") or [])
        rows.append(f'<tr><td>{name}</td><td style="color:{colour.get(status, "#000")};font-weight:bold">'
                    f'{escape(LABEL.get(status, status))}</td><td>{escape(str(m.get("score") or ""))}</td>'
                    f'<td>{reasons}</td></tr>')
    table = ("<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr><th>Machine</th><th>Status</th>"
             "<th>Score</th><th>Reasons</th></tr>" + "".join(rows) + "</table>") if rows else ""
    text = "<br>".join(escape(line) for line in clean_block(notification.text).split("\n"))
    return (f"<!DOCTYPE html><html><body><h2>{escape(clean(notification.title))}</h2><p>{text}</p>{table}"
            f"<p style=\"color:#777\">Sent by DashFleet.</p></body></html>")


@hookimpl
def register_notifiers(register, settings):
    register(EmailNotifier(settings.plugin_settings(PLUGIN_NAME, EmailSettings)))
