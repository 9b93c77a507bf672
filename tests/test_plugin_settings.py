"""Settings reach a plugin one way: its `register_*` hook gets `settings` and reads its own
`[plugins.<name>]` table there (tests/test_hooks.py checks every hook gets the same object). A bad
table is therefore found when the plugin is registered: by `dashfleet config check` and at the
start of the host, not later. The former ways (a notifier's `configure(settings)`, an action's
`context.options(Model)`) still work for third-party plugins written for them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import textwrap
from types import ModuleType

import pytest
from pydantic import BaseModel

from conftest import dashfleet_cmd, free_port
from dashfleet_core import hookimpl
from dashfleet_core.actions import ActionParams, ActionService, BaseAction
from dashfleet_core.alerting.delivery import load_notifiers
from dashfleet_core.config import ConfigError
from dashfleet_core.models import Notification
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.storage import open_storage


def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLEET_TOKEN", "HOST", "PORT", "DASHFLEET_STORAGE", "DASHFLEET_CONFIG", "WEBHOOK_URL")}
    env["PYTHONPATH"] = str(tmp_path)
    return env


def _config(tmp_path, extra: str) -> str:
    path = tmp_path / "dashfleet.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n'
                    f'[server]\ndata_dir = "{tmp_path}"\n' + textwrap.dedent(extra))
    return str(path)


def _run(args, tmp_path, timeout=120):
    return subprocess.run(dashfleet_cmd() + args, cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=timeout)


# --- a bad table is found when the plugin registers ---------------------------------------------


def test_a_builtin_action_reads_its_table_when_registered(settings_factory):
    settings = settings_factory({"plugins.cleanup_temp.folders": "/tmp"})  # a string, not a list
    pm = make_plugin_manager(settings, entrypoints=False)
    with pytest.raises(ConfigError, match=r"plugins\.cleanup_temp\.folders"):
        ActionService(settings, pm, None)


@pytest.mark.parametrize("table, key", [
    ("[plugins.cleanup_temp]\nfolders = \"/tmp\"\n", "plugins.cleanup_temp.folders"),
    ("[plugins.webhook]\nurl = \"ftp://hooks.example/x\"\n", "plugins.webhook.url"),
])
def test_config_check_fails_on_a_bad_action_or_notifier_table(tmp_path, table, key):
    r = _run(["config", "check", "--config", _config(tmp_path, table)], tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert key in r.stderr


def test_dashfleet_web_does_not_start_with_a_bad_action_table(tmp_path):
    config = _config(tmp_path, "[plugins.restart_spooler]\ncups_unit = 5\n")
    r = _run(["web", "--port", str(free_port()), "--config", config], tmp_path, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "plugins.restart_spooler.cups_unit" in r.stderr and "Traceback" not in r.stderr


# --- the former ways still work ----------------------------------------------------------------


class _Options(BaseModel):
    url: str | None = None


def _legacy_notifier_plugin() -> ModuleType:
    """A third-party notifier written for `configure(settings)`: registered unconfigured, set up
    (or switched off, None) by `configure`."""

    class Legacy:
        name = "legacy"

        def __init__(self, url=None):
            self.url = url

        def configure(self, settings):
            url = settings.plugin_settings("legacy_notifier", _Options).url
            return Legacy(url) if url else None

        def send(self, message):
            import requests

            requests.post(self.url, json={"title": message.title}, timeout=5).raise_for_status()

    module = ModuleType("legacy_notifier")

    @hookimpl
    def register_notifiers(register):
        register(Legacy())

    module.register_notifiers = register_notifiers
    return module


def test_a_notifier_set_up_by_configure_still_works(settings_factory, webhook_server, caplog):
    url = f"http://127.0.0.1:{webhook_server.server_port}/legacy"
    settings = settings_factory({"plugins.legacy_notifier.url": url})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("legacy_notifier", _legacy_notifier_plugin())])
    with caplog.at_level(logging.DEBUG, logger="dashfleet_core.alerting.delivery"):
        notifiers = load_notifiers(pm, settings)
    notifiers["legacy"].send(Notification(title="pc-1 is critical", text="x"))
    [hit] = webhook_server.captured
    assert hit["path"] == "/legacy" and json.loads(hit["body"]) == {"title": "pc-1 is critical"}
    assert any("configure(settings), the former way" in r.getMessage() for r in caplog.records)

    off = settings_factory({})
    pm = make_plugin_manager(off, entrypoints=False, extra=[("legacy_notifier", _legacy_notifier_plugin())])
    assert "legacy" not in load_notifiers(pm, off)  # configure() returned None: not configured


class _Folder(BaseModel):
    folder: str


class _Where(BaseAction):
    """A third-party action written for `context.options(Model)`: it reads its table on each run."""

    name = "where_legacy"
    description = "Say which folder [plugins.legacy_action] names"
    changes_machine = False
    Params = ActionParams

    def run(self, params, context):
        return self.result(True, context.options(_Folder).folder, params)


def test_an_action_reading_context_options_still_works(settings_factory, caplog):
    module = ModuleType("legacy_action")

    @hookimpl
    def register_actions(register):
        register(_Where())

    module.register_actions = register_actions
    settings = settings_factory({"plugins.legacy_action.folder": "/srv/data"})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("legacy_action", module)])
    storage = open_storage(settings, pm)
    try:
        with caplog.at_level(logging.DEBUG, logger="dashfleet.actions"):
            result = ActionService(settings, pm, storage).run("where_legacy", {}, actor="test")
    finally:
        storage.close()
    assert (result.ok, result.summary) == (True, "/srv/data")
    assert any("context.options(), the former way" in r.getMessage() for r in caplog.records)
