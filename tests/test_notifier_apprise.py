"""The apprise notifier against the real local receivers: `json://` into the webhook receiver and
`mailto://` into the SMTP server."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import registered
from dashfleet_core.config import ConfigError
from dashfleet_core.models import Notification
from dashfleet_plugins.notifiers import apprise_urls as plugin
from dashfleet_plugins.notifiers.apprise_urls import AppriseError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("apprise") is None,
                                reason="apprise not installed: pip install -e '.[test]'")


@pytest.fixture
def configured(monkeypatch):
    """The apprise notifier as its plugin registers it for `settings`, with $APPRISE_URLS set to
    `env_urls` (unset when None)."""
    def make(settings, env_urls=None):
        if env_urls is None:
            monkeypatch.delenv("APPRISE_URLS", raising=False)
        else:
            monkeypatch.setenv("APPRISE_URLS", env_urls)
        return registered(plugin, "register_notifiers", settings)

    return make


def test_apprise_urls_from_the_environment(settings_factory, webhook_server, smtp_server, configured):
    host, port, mails = smtp_server
    urls = (f"json://127.0.0.1:{webhook_server.server_port}/hooks/apprise "
            f"mailto://{host}:{port}?from=dashfleet@example.test&to=ops@example.test&mode=insecure")
    notifier = configured(settings_factory({}), urls)
    notifier.send(Notification(title="[CRITICAL] web-01", text="web-01 is CRITICAL"))
    [hit] = webhook_server.captured
    body = json.loads(hit["body"])
    assert (body["title"], body["message"]) == ("[CRITICAL] web-01", "web-01 is CRITICAL")
    [mail] = mails
    assert mail["Subject"] == "[CRITICAL] web-01"


def test_failure_names_the_url_without_its_secret(settings_factory, webhook_server, configured):
    webhook_server.behaviour["status"] = 500
    url = f"json://127.0.0.1:{webhook_server.server_port}/secret-token"
    notifier = configured(settings_factory({"plugins.apprise.urls": [url]}))
    with pytest.raises(AppriseError, match=r"#1 \(json://\.\.\.\)") as info:
        notifier.send(Notification(title="t", text="x"))
    assert "secret-token" not in str(info.value)


def test_off_without_urls_and_bad_urls_are_config_errors(settings_factory, configured):
    assert not configured(settings_factory({})).configured
    with pytest.raises(ConfigError, match="apprise URL #1"):
        configured(settings_factory({}), "nosuchservice://x")
    with pytest.raises(ConfigError, match="apprise URL #2"):  # the file's URLs first, then $APPRISE_URLS
        configured(settings_factory({"plugins.apprise.urls": ["json://127.0.0.1:9/x"]}), "nosuchservice://x")
