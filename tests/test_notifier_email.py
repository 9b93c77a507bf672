"""The email notifier against a real local SMTP server (aiosmtpd), alone and through the alert path."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest

from dashfleet_core.config import ConfigError
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Event, Notification, Report, utcnow
from dashfleet_plugins.notifiers.email_smtp import EmailNotifier


def email_settings(settings_factory, smtp, **extra):
    host, port, _ = smtp
    return settings_factory({"plugins.email": {"host": host, "port": port, "security": "none",
                                               "from": "dashfleet@example.test",
                                               "to": ["ops@example.test", "oncall@example.test"], **extra},
                             "server.report_self": False, "server.public_url": "http://fleet.example"})


def parts(message):
    return {p.get_content_type(): p.get_payload(decode=True).decode() for p in message.walk()
            if not p.is_multipart()}


def test_email_alert_through_the_alert_path(settings_factory, smtp_server):
    fleet = Fleet(email_settings(settings_factory, smtp_server))
    try:
        for seq in range(3):
            fleet.ingest([Report(machine_id="mail-01", hostname="<b>mail</b>", seq=seq,
                                 metrics={"disk.percent": 99})])
        fleet.pm.get_plugin("alerting").tick(now=utcnow() + timedelta(seconds=10))
    finally:
        fleet.stop()
    [mail] = smtp_server[2]
    assert mail["Subject"] == "[CRITICAL] mail-01"
    assert mail["From"] == "dashfleet@example.test"
    assert "ops@example.test" in mail["X-RcptTo"] and "oncall@example.test" in mail["X-RcptTo"]
    body = parts(mail)
    assert "mail-01" in body["text/plain"] and "disk.percent is 99" in body["text/plain"]
    html = body["text/html"]
    assert 'href="http://fleet.example/fleet/mail-01"' in html and "CRITICAL" in html
    assert "&lt;b&gt;mail&lt;/b&gt;" in html and "<b>mail</b>" not in html, "agent data is escaped"


def test_starttls_required_by_default_refuses_a_plain_server(settings_factory, smtp_server):
    settings = email_settings(settings_factory, smtp_server, security="starttls")
    notifier = EmailNotifier().configure(settings)
    with pytest.raises(smtplib.SMTPNotSupportedError):
        notifier.send(Notification(title="t", text="x"))
    assert smtp_server[2] == [], "nothing is sent in clear text when STARTTLS was asked for"


def test_email_is_off_without_host_or_recipients(settings_factory):
    assert EmailNotifier().configure(settings_factory({})) is None
    assert EmailNotifier().configure(settings_factory({"plugins.email": {"host": "smtp.example"}})) is None


def test_bad_email_settings_name_the_key(settings_factory):
    settings = settings_factory({"plugins.email": {"host": "smtp", "to": ["not-an-address"]}})
    with pytest.raises(ConfigError, match=r"plugins\.email\.to"):
        EmailNotifier().configure(settings)
    settings = settings_factory({"plugins.email": {"host": "smtp", "to": "a@x", "password": "secret"}})
    with pytest.raises(ConfigError, match=r"plugins\.email\.password.*unknown key"):
        EmailNotifier().configure(settings)


def test_digest_email_lists_every_machine(settings_factory, smtp_server):
    settings = email_settings(settings_factory, smtp_server)
    notifier = EmailNotifier().configure(settings)
    from dashfleet_core.alerting_messages import digest

    events = [Event(machine_id=f"pc-{i}", kind="silent", at=utcnow(), details={"last_seen": utcnow().isoformat()})
              for i in range(6)]
    notifier.send(digest([(e, "ok") for e in events], 2))
    [mail] = smtp_server[2]
    assert mail["Subject"].startswith("[DashFleet] 6 machines changed")
    text = parts(mail)["text/plain"]
    assert all(f"pc-{i}" in text for i in range(6))
