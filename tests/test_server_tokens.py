"""Weak server tokens are refused at start (issue 12, item 10): the app factory raises a ConfigError
and `dashfleet web` exits 2, saying how to generate a token; a short FLEET_TOKEN only warns."""

from __future__ import annotations

import logging
import os
import subprocess

import pytest

from conftest import dashfleet_cmd, free_port
from dashfleet_core.config import ConfigError
from dashfleet_web.app import create_app

GOOD_ACTION = "a-long-enough-action-token-0123"
GOOD_FLEET = "a-long-enough-fleet-token-45678"
HOW = "secrets.token_urlsafe(32)"


@pytest.mark.parametrize("fleet, action, needle", [
    (GOOD_FLEET, GOOD_FLEET, "FLEET_TOKEN and ACTION_TOKEN are the same"),
    (GOOD_FLEET, " ", "ACTION_TOKEN ([actions] token) is blank"),
    (" ", GOOD_ACTION, "FLEET_TOKEN ([server] token) is blank"),
    (GOOD_FLEET, "x", "ACTION_TOKEN ([actions] token) has 1 characters, fewer than 16"),
    (GOOD_FLEET, "fifteen-chars-x", "has 15 characters, fewer than 16"),
])
def test_create_app_refuses_weak_tokens(settings_factory, tmp_path, fleet, action, needle):
    settings = settings_factory({"server.token": fleet, "actions.token": action})
    with pytest.raises(ConfigError) as info:
        create_app(settings, start=False)
    assert needle in str(info.value)
    assert HOW in str(info.value), "the message says how to make a good token"
    assert not (tmp_path / "dashfleet.db").exists(), "refused before storage is opened"


def test_sixteen_characters_and_distinct_tokens_start(settings_factory):
    app = create_app(settings_factory({"server.token": GOOD_FLEET, "actions.token": "sixteen-chars-ok"}),
                     start=False)
    try:
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        app.extensions["dashfleet"].stop()


def test_short_fleet_token_only_warns_and_keeps_working(settings_factory, caplog):
    caplog.set_level(logging.WARNING, logger="dashfleet_web.app")
    app = create_app(settings_factory({"server.token": "short", "server.report_self": False}), start=False)
    try:
        assert any("FLEET_TOKEN ([server] token) has 5 characters" in r.getMessage() and HOW in r.getMessage()
                   for r in caplog.records)
        answer = app.test_client().post("/api/fleet/report", headers={"Authorization": "Bearer short"},
                                        json={"machine_id": "m1", "seq": 1, "hostname": "m1",
                                              "metrics": {"cpu.percent": 1.0}})
        assert answer.status_code == 201, answer.get_json()
    finally:
        app.extensions["dashfleet"].stop()


def test_dashfleet_web_exits_2_on_a_blank_action_token(tmp_path):
    config = tmp_path / "dashfleet.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n[server]\n'
                      f'data_dir = "{tmp_path}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("FLEET_TOKEN", "DASHFLEET_CONFIG")}
    env.update(ACTION_TOKEN=" ", FLEET_TOKEN=GOOD_FLEET)
    done = subprocess.run(dashfleet_cmd() + ["web", "--port", str(free_port()), "--config", str(config)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ACTION_TOKEN ([actions] token) is blank" in done.stderr and HOW in done.stderr
    assert "Traceback" not in done.stderr
