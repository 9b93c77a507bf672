"""The apprise notifier against the real local receivers: `json://` into the webhook receiver and
`mailto://` into the SMTP server."""

from __future__ import annotations

import importlib.util
import json

import pytest

from dashfleet_core.config import ConfigError
from dashfleet_core.models import Notification
from dashfleet_plugins.notifiers.apprise_urls import AppriseError, AppriseNotifier

pytestmark = pytest.mark.skipif(importlib.util.find_spec("apprise") is None,
                                reason="apprise not installed: pip install -e '.[test]'")


def test_apprise_urls_from_the_environment(settings_factory, webhook_server, smtp_server):
    host, port, mails = smtp_server
    urls = (f"json://127.0.0.1:{webhook_server.server_port}/hooks/apprise "
            f"mailto://{host}:{port}?from=dashfleet@example.test&to=ops@example.test&mode=insecure")
    notifier = AppriseNotifier(env={"APPRISE_URLS": urls}).configure(settings_factory({}))
    notifier.send(Notification(title="[CRITICAL] web-01", text="web-01 is CRITICAL"))
    [hit] = webhook_server.captured
    body = json.loads(hit["body"])
    assert (body["title"], body["message"]) == ("[CRITICAL] web-01", "web-01 is CRITICAL")
    [mail] = mails
    assert mail["Subject"] == "[CRITICAL] web-01"


def test_failure_names_the_url_without_its_secret(settings_factory, webhook_server):
    webhook_server.behaviour["status"] = 500
    url = f"json://127.0.0.1:{webhook_server.server_port}/secret-token"
    notifier = AppriseNotifier(env={}).configure(settings_factory({"plugins.apprise.urls": [url]}))
    with pytest.raises(AppriseError, match=r"#1 \(json://\.\.\.\)") as info:
        notifier.send(Notification(title="t", text="x"))
    assert "secret-token" not in str(info.value)


def test_off_without_urls_and_bad_urls_are_config_errors(settings_factory):
    assert AppriseNotifier(env={}).configure(settings_factory({})) is None
    with pytest.raises(ConfigError, match="apprise URL #1"):
        AppriseNotifier(env={"APPRISE_URLS": "nosuchservice://x"}).configure(settings_factory({}))
