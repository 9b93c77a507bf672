"""The webhook notifier against a real local HTTP receiver: payload, errors, timeouts, config."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from conftest import dashfleet_cmd, registered
from dashfleet_core.config import ConfigError
from dashfleet_core.models import Event, Notification, utcnow
from dashfleet_plugins.notifiers import webhook as plugin
from dashfleet_plugins.notifiers.webhook import WebhookError


def configured(settings):
    """The webhook notifier as its plugin registers it for `settings`."""
    return registered(plugin, "register_notifiers", settings)


def webhook(settings_factory, url, **extra):
    return configured(settings_factory({"plugins.webhook": {"url": url, **extra}}))


def note() -> Notification:
    event = Event(machine_id="web-01", kind="status_changed", previous="ok", status="critical", score=30,
                  at=utcnow(), details={"reasons": ["cpu.percent is 99"], "link": "http://x/fleet/web-01"})
    return Notification(title="[CRITICAL] web-01", text="web-01 is CRITICAL", events=[event])


def test_payload_is_slack_and_teams_text_plus_structured(settings_factory, webhook_server):
    url = f"http://127.0.0.1:{webhook_server.server_port}/hooks/x"
    webhook(settings_factory, url).send(note())
    [hit] = webhook_server.captured
    assert hit["path"] == "/hooks/x" and hit["headers"]["Content-Type"] == "application/json"
    body = json.loads(hit["body"])
    assert "web-01" in body["text"] and "CRITICAL" in body["text"]
    data = body["dashfleet"]
    assert (data["machine"], data["status"], data["score"]) == ("web-01", "critical", 30)
    assert data["reasons"] == ["cpu.percent is 99"] and data["link"] == "http://x/fleet/web-01"


def test_refusal_raises_so_the_message_is_retried(settings_factory, webhook_server):
    webhook_server.behaviour["status"] = 500
    notifier = webhook(settings_factory, f"http://127.0.0.1:{webhook_server.server_port}/secret-path")
    with pytest.raises(WebhookError, match="HTTP 500") as info:
        notifier.send(note())
    assert "secret-path" not in str(info.value), "webhook URLs carry secrets: never in messages"


def test_hanging_receiver_times_out(settings_factory, webhook_server):
    webhook_server.behaviour["block"] = threading.Event()
    notifier = webhook(settings_factory, f"http://127.0.0.1:{webhook_server.server_port}/h",
                       timeout_seconds=0.5)
    with pytest.raises(WebhookError, match="Timeout"):
        notifier.send(note())


def test_webhook_url_alone_enables_it(settings_factory, webhook_server):
    url = f"http://127.0.0.1:{webhook_server.server_port}/h"
    assert not configured(settings_factory({})).configured
    notifier = configured(settings_factory(env={"WEBHOOK_URL": url}))
    assert notifier.configured and notifier.options.url == url


def test_bad_url_is_a_config_error(settings_factory):
    with pytest.raises(ConfigError, match=r"plugins\.webhook\.url.*http"):
        configured(settings_factory({"plugins.webhook.url": "ftp://nope"}))


def test_notify_test_command(tmp_path, webhook_server):
    env = {"WEBHOOK_URL": f"http://127.0.0.1:{webhook_server.server_port}/hooks/test",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(dashfleet_cmd() + ["notify", "test"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "webhook: sent" in done.stdout
    [hit] = webhook_server.captured
    body = json.loads(hit["body"])
    assert "test message" in body["text"] and body["dashfleet"]["test"] is True

    webhook_server.behaviour["status"] = 500
    failed = subprocess.run(dashfleet_cmd() + ["notify", "test", "--notifier", "webhook"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "HTTP 500" in failed.stderr

    none = subprocess.run(dashfleet_cmd() + ["notify", "test"], env={**env, "WEBHOOK_URL": ""},
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and "no notifier is configured" in none.stderr


def test_bad_webhook_url_stops_the_server_at_start(tmp_path):
    config = tmp_path / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/d.db"\n[server]\ndata_dir = "{tmp_path}"\n')
    env = {"WEBHOOK_URL": "hooks.example.com/x", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(dashfleet_cmd() + ["web", "--config", str(config), "--port", "0"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "plugins.webhook.url" in done.stderr and "http" in done.stderr
