"""Hostile text from an agent in notifications (issue 12, item 5), against real receivers: the webhook
text escaped for each `[plugins.webhook] format`, the email Subject with no injected header, apprise
given clean text. The message is built by the real alert wording (`dashfleet_core.alerting.messages.single`)."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from conftest import registered
from dashfleet_core.alerting.messages import digest, single
from dashfleet_core.config import ConfigError
from dashfleet_core.models import Event, Notification, utcnow
from dashfleet_core.text import BIDI
from dashfleet_plugins.notifiers import email_smtp, webhook

LINK = "http://fleet.example/fleet/pc_01"
HOSTILE_HOST = "<!channel> <https://evil.example|Click> [login](https://evil.example) @everyone \u202eexe\r\nX\x1b[2J"
HOSTILE_REASON = "**disk** `full` <@123456> \u2066#1"
# What each piece becomes once cleaned: bidi and ESC gone, CR/LF as spaces.
HOST = "<!channel> <https://evil.example|Click> [login](https://evil.example) @everyone exe  X[2J"
REASON = "**disk** `full` <@123456> #1"


def hostile_event(**details) -> Event:
    return Event(machine_id="pc_01", kind="status_changed", previous="ok", status="critical", score=30,
                 at=utcnow(), details={"hostname": HOSTILE_HOST, "reasons": [HOSTILE_REASON], "link": LINK,
                                       **details})


def send_webhook(settings_factory, webhook_server, fmt: str | None, notification: Notification) -> dict:
    options = {"url": f"http://127.0.0.1:{webhook_server.server_port}/hooks/x"}
    if fmt is not None:
        options["format"] = fmt
    registered(webhook, "register_notifiers", settings_factory({"plugins.webhook": options})).send(notification)
    [hit] = webhook_server.captured
    return json.loads(hit["body"])


def assert_no_hidden(text: str) -> None:
    assert not re.search(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{BIDI}]", text), repr(text)


def test_slack_is_the_default_and_escapes_amp_lt_gt(settings_factory, webhook_server):
    body = send_webhook(settings_factory, webhook_server, None, single(hostile_event(), "ok"))
    host = HOST.replace("<", "&lt;").replace(">", "&gt;")
    reason = REASON.replace("<", "&lt;").replace(">", "&gt;")
    assert body["text"] == (f"[CRITICAL] pc_01\npc_01 ({host}) is CRITICAL (was OK), health 30/100. "
                            f"{reason}. {LINK}")
    assert "<" not in body["text"] and ">" not in body["text"], "no <!channel>, <@id> or <url|label>"
    assert_no_hidden(body["text"])
    data = body["dashfleet"]  # the structured part stays exact: data, JSON-encoded
    assert data["machines"][0]["hostname"] == HOSTILE_HOST and data["reasons"] == [HOSTILE_REASON]


@pytest.mark.parametrize("fmt", ["teams", "discord"])
def test_markdown_targets_get_markdown_neutralised(settings_factory, webhook_server, fmt):
    body = send_webhook(settings_factory, webhook_server, fmt, single(hostile_event(), "ok"))
    text = body["content"] if fmt == "discord" else body["text"]
    esc = lambda s: re.sub(r"([\\`*_{}\[\]()#+\-.!|~<>])", r"\\\1", s)  # noqa: E731
    host = esc(HOST)
    if fmt == "discord":
        host = host.replace("@everyone", "@\u200beveryone")
    reason = esc(REASON).replace("@123456", "@\u200b123456") if fmt == "discord" else esc(REASON)
    assert text == (f"\\[CRITICAL\\] pc\\_01\npc\\_01 \\({host}\\) is CRITICAL \\(was OK\\), health 30/100\\. "
                    f"{reason}\\. {LINK}"), "the dashboard link DashFleet wrote stays clickable"
    assert "\\[login\\]\\(https://evil\\.example\\)" in text, "no disguised Markdown link"
    assert_no_hidden(text)
    if fmt == "discord":
        assert body == {"content": text, "allowed_mentions": {"parse": []}}
    else:
        assert body["dashfleet"]["machine"] == "pc_01"


def test_plain_format_only_cleans(settings_factory, webhook_server):
    body = send_webhook(settings_factory, webhook_server, "plain", single(hostile_event(), "ok"))
    assert body["text"] == (f"[CRITICAL] pc_01\npc_01 ({HOST}) is CRITICAL (was OK), health 30/100. "
                            f"{REASON}. {LINK}")


def test_discord_message_fits_discords_limit(settings_factory, webhook_server):
    events = [hostile_event(link=f"http://fleet.example/fleet/pc-{i}") for i in range(40)]
    body = send_webhook(settings_factory, webhook_server, "discord", digest([(e, "ok") for e in events], 2))
    assert len(body["content"]) <= 2000 and body["content"].endswith("\u2026")
    assert not body["content"].endswith("\\\u2026"), "an escape is never cut in half"


def test_agent_pieces_are_capped():
    long_host = "h" * 5000
    message = single(hostile_event(hostname=long_host, reasons=["r" * 5000] * 30), "ok")
    assert len(message.text) < 5000
    assert "and 20 more" in message.text and "\u2026" in message.text


def test_unknown_format_is_a_config_error(settings_factory):
    settings = settings_factory({"plugins.webhook": {"url": "https://hooks.example/x", "format": "html"}})
    with pytest.raises(ConfigError, match=r"plugins\.webhook\.format"):
        registered(webhook, "register_notifiers", settings)


# --- email -----------------------------------------------------------------------------------------


def email(settings_factory, smtp):
    host, port, _ = smtp
    return registered(email_smtp, "register_notifiers", settings_factory({"plugins.email": {
        "host": host, "port": port, "security": "none", "from": "dashfleet@example.test",
        "to": ["ops@example.test"]}}))


def test_email_subject_cannot_carry_a_header(settings_factory, smtp_server):
    title = "[CRITICAL] pc\u2028Bcc: victim@example.test\r\nX-Evil: 1\x85Cc: other@example.test \u202eexe"
    email(settings_factory, smtp_server).send(Notification(title=title, text="x"))
    [mail] = smtp_server[2]
    assert mail["Subject"].replace("\r\n", "").lstrip() == "[CRITICAL] pc Bcc: victim@example.test  X-Evil: 1 Cc: other@example.test exe"
    assert mail["Bcc"] is None and mail["X-Evil"] is None and mail["Cc"] is None
    assert mail["X-RcptTo"] == "ops@example.test"


def test_email_body_of_a_hostile_alert_is_clean_and_escaped(settings_factory, smtp_server):
    email(settings_factory, smtp_server).send(single(hostile_event(), "ok"))
    [mail] = smtp_server[2]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk()
             if not p.is_multipart()}
    assert f"pc_01 ({HOST}) is CRITICAL" in parts["text/plain"]
    assert_no_hidden(parts["text/plain"].replace("\r\n", " "))
    html = parts["text/html"]
    assert "&lt;!channel&gt; &lt;https://evil.example|Click&gt;" in html and "<!channel>" not in html
    assert_no_hidden(html.replace("\r\n", " "))


# --- apprise ---------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("apprise") is None, reason="apprise not installed")
def test_apprise_gets_clean_text_without_mentions(settings_factory, webhook_server, smtp_server, monkeypatch):
    from dashfleet_plugins.notifiers import apprise_urls

    host, port, mails = smtp_server
    urls = (f"json://127.0.0.1:{webhook_server.server_port}/hooks/apprise "
            f"mailto://{host}:{port}?from=dashfleet@example.test&to=ops@example.test&mode=insecure")
    monkeypatch.setenv("APPRISE_URLS", urls)
    notifier = registered(apprise_urls, "register_notifiers", settings_factory({}))
    message = single(hostile_event(), "ok")
    message.title = "[CRITICAL] pc_01\r\nBcc: victim@example.test \u202eexe"
    notifier.send(message)
    [hit] = webhook_server.captured
    body = json.loads(hit["body"])
    assert_no_hidden(body["message"])
    assert_no_hidden(body["title"])
    assert "@\u200beveryone" in body["message"] and "@everyone" not in body["message"]
    assert body["title"] == "[CRITICAL] pc_01  Bcc: victim@example.test exe"
    [mail] = mails
    assert mail["Bcc"] is None and mail["X-RcptTo"] == "ops@example.test"


@pytest.mark.skipif(importlib.util.find_spec("apprise") is None, reason="apprise not installed")
def test_apprise_discord_urls_get_discord_escaping():
    """apprise sends plain text to Discord as it is, and Discord renders Markdown: a real apprise
    Discord service (built from its URL, nothing sent) gets DashFleet's Discord escaping."""
    from dashfleet_plugins.notifiers.apprise_urls import _import_apprise, _quiet, message_for

    apprise = _import_apprise()
    with _quiet():  # apprise loads its service plugins lazily, one imports the deprecated imghdr
        client = apprise.Apprise()
        assert client.add("discord://1234567890/abcdefghijklmnop")
    title, body, body_format = message_for(client[0], single(hostile_event(), "ok"))
    assert body_format == apprise.NotifyFormat.MARKDOWN
    assert "\\[login\\]\\(https://evil\\.example\\)" in body and "@\u200beveryone" in body
    assert body.endswith(LINK) and title == "\\[CRITICAL\\] pc\\_01"
    assert_no_hidden(body)
    with _quiet():
        client = apprise.Apprise()
        assert client.add("json://127.0.0.1:9/x")
    assert message_for(client[0], single(hostile_event(), "ok"))[2] == apprise.NotifyFormat.TEXT
