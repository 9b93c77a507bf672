"""The email notifier against a real local SMTP server (aiosmtpd), alone and through the alert path."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest

from conftest import registered
from dashfleet_core.config import ConfigError
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Event, Notification, Report, utcnow
from dashfleet_plugins.notifiers import email_smtp as plugin


def configured(settings):
    """The email notifier as its plugin registers it for `settings`."""
    return registered(plugin, "register_notifiers", settings)


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
        fleet.alerting.tick(now=utcnow() + timedelta(seconds=10))
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
    notifier = configured(settings)
    with pytest.raises(smtplib.SMTPNotSupportedError):
        notifier.send(Notification(title="t", text="x"))
    assert smtp_server[2] == [], "nothing is sent in clear text when STARTTLS was asked for"


def test_email_is_off_without_host_or_recipients(settings_factory):
    assert not configured(settings_factory({})).configured
    assert not configured(settings_factory({"plugins.email": {"host": "smtp.example"}})).configured
    assert not configured(settings_factory({"plugins.email": {"to": ["ops@example.test"]}})).configured
    assert configured(settings_factory({"plugins.email": {"host": "smtp.example",
                                                          "to": ["ops@example.test"]}})).configured


def test_bad_email_settings_name_the_key(settings_factory):
    settings = settings_factory({"plugins.email": {"host": "smtp", "to": ["not-an-address"]}})
    with pytest.raises(ConfigError, match=r"plugins\.email\.to"):
        configured(settings)
    settings = settings_factory({"plugins.email": {"host": "smtp", "to": "a@x", "password": "secret"}})
    with pytest.raises(ConfigError, match=r"plugins\.email\.password.*unknown key"):
        configured(settings)


def test_digest_email_lists_every_machine(settings_factory, smtp_server):
    settings = email_settings(settings_factory, smtp_server)
    notifier = configured(settings)
    from dashfleet_core.alerting.messages import digest

    events = [Event(machine_id=f"pc-{i}", kind="silent", at=utcnow(), details={"last_seen": utcnow().isoformat()})
              for i in range(6)]
    notifier.send(digest([(e, "ok") for e in events], 2))
    [mail] = smtp_server[2]
    assert mail["Subject"].startswith("[DashFleet] 6 machines changed")
    text = parts(mail)["text/plain"]
    assert all(f"pc-{i}" in text for i in range(6))


@pytest.fixture
def tls_files(tmp_path):
    """A self-signed certificate for 127.0.0.1, made by openssl."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl not found: apt-get install openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_smtp(tls_files, request):
    """A real SMTP server speaking STARTTLS (or implicit TLS) and requiring a login."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from conftest import free_port

    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    received, logins = [], []

    class Capture(Message):
        def handle_message(self, message):
            received.append(message)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok)

    mode = request.param
    # aiosmtpd does not count implicit TLS as TLS for AUTH, so only STARTTLS can insist on it.
    kwargs = ({"ssl_context": context, "auth_require_tls": False} if mode == "ssl" else
              {"tls_context": context, "require_starttls": True, "auth_require_tls": True})
    ctl = Controller(Capture(), hostname="127.0.0.1", port=free_port(), authenticator=authenticator, **kwargs)
    ctl.start()
    try:
        yield mode, ctl.port, cert, received, logins
    finally:
        ctl.stop()


@pytest.mark.parametrize("tls_smtp", ["starttls", "ssl"], indirect=True)
def test_tls_and_login_from_the_environment(settings_factory, tls_smtp, monkeypatch):
    mode, port, cert, received, logins = tls_smtp
    settings = settings_factory({"plugins.email": {"host": "127.0.0.1", "port": port, "security": mode,
                                                   "ca_file": str(cert), "to": ["ops@example.test"]}})
    monkeypatch.setenv("SMTP_USER", "alerts")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    notifier = configured(settings)
    notifier.send(Notification(title="[CRITICAL] tls-01", text="tls-01 is CRITICAL"))
    assert logins == [("alerts", True)]
    [mail] = received
    assert mail["Subject"] == "[CRITICAL] tls-01"

    untrusted = settings_factory({"plugins.email": {"host": "127.0.0.1", "port": port, "security": mode,
                                                    "to": ["ops@example.test"]}})
    import ssl

    monkeypatch.delenv("SMTP_USER")
    monkeypatch.delenv("SMTP_PASSWORD")
    with pytest.raises(ssl.SSLCertVerificationError):
        configured(untrusted).send(Notification(title="x", text="y"))
    assert len(received) == 1, "an unverified server gets nothing"
