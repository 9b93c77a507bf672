"""The plugin manager factory: built-ins, entry points, `[plugins] enabled/disabled/modules`,
per-plugin settings, and the rules (unknown names, misspelt hooks, duplicate objects)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.config import ConfigError, settings_from_dict
from dashfleet_core.plugins import (PluginError, builtin_candidates, gather, make_plugin_manager,
                                    plugin_infos)

BUILTIN_COLLECTORS = {"cpu", "memory", "disk", "uptime", "network", "processes", "battery",
                      "temperatures"}


def names(pm):
    return {name for name, _ in pm.list_name_plugin()}


def collectors_of(pm, settings=None):
    return set(gather(pm, "register_collectors", "collector",
                      settings=settings or settings_from_dict({})).names())


def test_builtins_are_registered_under_their_names():
    pm = make_plugin_manager(settings_from_dict({}), entrypoints=False)
    assert BUILTIN_COLLECTORS | {"thresholds", "csv", "jsonl"} <= names(pm)
    assert collectors_of(pm) >= BUILTIN_COLLECTORS


def test_plugin_name_constant_is_read_without_importing_the_module():
    found = {c.module: c.name for c in builtin_candidates()}
    assert found["dashfleet_plugins.exporters.csv_sink"] == "csv"
    assert found["dashfleet_plugins.exporters.jsonl_sink"] == "jsonl"


def test_a_disabled_plugin_is_never_imported():
    code = textwrap.dedent("""
        import sys, json
        from dashfleet_core.config import settings_from_dict
        from dashfleet_core.plugins import make_plugin_manager
        pm = make_plugin_manager(settings_from_dict({"plugins": {"disabled": ["processes"]}}))
        print(json.dumps(["dashfleet_plugins.collectors.processes" in sys.modules,
                          "dashfleet_plugins.collectors.cpu" in sys.modules]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, True]


def test_enabled_is_an_allow_list_for_collectors_only():
    s = settings_from_dict({"plugins": {"enabled": ["cpu", "memory"]}})
    pm = make_plugin_manager(s, entrypoints=False)
    assert collectors_of(pm, s) == {"cpu", "memory"}
    assert {"thresholds", "csv", "jsonl"} <= names(pm)  # health and storage are chosen elsewhere
    for info in plugin_infos(pm):  # so are notifiers and actions: alerting is not switched off
        if info.kind in ("notifiers", "actions"):
            assert info.enabled and pm.get_plugin(info.name) is not None, info.name
    info = {i.name: i for i in plugin_infos(pm)}
    assert info["cpu"].enabled and not info["disk"].enabled
    assert info["disk"].hooks == []


def test_disabled_blocks_any_plugin_kind():
    s = settings_from_dict({"plugins": {"disabled": ["disk", "thresholds"]}})
    pm = make_plugin_manager(s, entrypoints=False)
    assert "disk" not in collectors_of(pm, s)
    assert pm.is_blocked("thresholds")
    assert gather(pm, "register_health_checks", "check", settings=s).names() == []


@pytest.mark.parametrize("key", ["enabled", "disabled"])
def test_unknown_plugin_names_are_config_errors(key):
    s = settings_from_dict({"plugins": {key: ["cpu", "cpux"]}}, source="fleet.toml")
    with pytest.raises(ConfigError) as info:
        make_plugin_manager(s, entrypoints=False)
    msg = str(info.value)
    assert msg.startswith("fleet.toml: [plugins] " + key)
    assert "'cpux'" in msg and "known plugins are:" in msg and "memory" in msg


def test_a_table_for_an_unknown_plugin_is_a_config_error():
    s = settings_from_dict({"plugins": {"cpux": {"a": 1}}}, source="fleet.toml")
    with pytest.raises(ConfigError, match=r"fleet.toml: \[plugins.cpux\]: no plugin named 'cpux'"):
        make_plugin_manager(s, entrypoints=False)


def test_a_plugin_setting_that_is_not_a_table_is_a_config_error():
    s = settings_from_dict({"plugins": {"processes": 5}}, source="fleet.toml")
    with pytest.raises(ConfigError, match=r"\[plugins\] processes: expected a table"):
        make_plugin_manager(s, entrypoints=False)


def test_builtin_plugin_settings_reach_the_plugin():
    s = settings_from_dict({"plugins": {"enabled": ["processes"], "processes": {"top": 1}}})
    pm = make_plugin_manager(s, entrypoints=False)
    collector = gather(pm, "register_collectors", "collector", settings=s)["processes"]
    reading = collector.collect()
    assert reading.facts["processes.top_cpu"].count(",") == 0  # one process named


def test_builtin_plugin_settings_are_validated():
    s = settings_from_dict({"plugins": {"processes": {"top": "lots"}}}, source="fleet.toml")
    pm = make_plugin_manager(s, entrypoints=False)
    with pytest.raises(ConfigError, match=r"fleet.toml.*\n.*\[plugins.processes.top\]"):
        gather(pm, "register_collectors", "collector", settings=s)


def _write_module(tmp_path, monkeypatch, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_modules_from_config_are_loaded_and_listed(tmp_path, monkeypatch):
    mod = _write_module(tmp_path, monkeypatch, "df_extra_collector", """
        from dashfleet_core import hookimpl
        from dashfleet_core.collectors import Reading

        class C:
            name = "extra"
            metrics = []
            def collect(self):
                return Reading(metrics={"extra.value": 1.0})

        @hookimpl
        def register_collectors(register):
            register(C())
    """)
    s = settings_from_dict({"plugins": {"modules": [mod]}})
    pm = make_plugin_manager(s, entrypoints=False)
    assert "extra" in collectors_of(pm, s)
    info = {i.name: i for i in plugin_infos(pm)}[mod]
    assert (info.source, info.enabled, info.hooks) == ("config", True, ["register_collectors"])


def test_a_module_that_cannot_be_imported_is_a_config_error():
    s = settings_from_dict({"plugins": {"modules": ["no_such_module_here"]}}, source="fleet.toml")
    with pytest.raises(ConfigError) as info:
        make_plugin_manager(s, entrypoints=False)
    msg = str(info.value)
    assert "fleet.toml" in msg and "'no_such_module_here'" in msg and "[plugins] modules" in msg


def test_a_misspelt_hook_fails_loudly(tmp_path, monkeypatch):
    mod = _write_module(tmp_path, monkeypatch, "df_misspelt", """
        from dashfleet_core import hookimpl

        @hookimpl
        def register_colectors(register):
            pass
    """)
    with pytest.raises(ConfigError, match=r"plugin 'df_misspelt'.*register_colectors.*plugin-hooks"):
        make_plugin_manager(settings_from_dict({"plugins": {"modules": [mod]}}), entrypoints=False)


def test_a_hook_with_unknown_arguments_is_refused():
    class Bad:
        @hookimpl
        def register_collectors(self, register, colour):
            pass

    with pytest.raises(ConfigError, match=r"(?s)plugin .bad. cannot be registered.*colour"):
        make_plugin_manager(settings_from_dict({}), entrypoints=False, extra=[("bad", Bad())])


class _Named:
    def __init__(self, name):
        self.name = name
        self.metrics = []

    def collect(self):
        return Reading()


def test_two_collectors_with_one_name_are_refused():
    class Dup:
        @hookimpl
        def register_collectors(self, register):
            register(_Named("cpu"))

    pm = make_plugin_manager(settings_from_dict({}), entrypoints=False, extra=[("dup", Dup())])
    with pytest.raises(PluginError, match=r"collector 'cpu' is registered by both 'dup' and 'cpu'"):
        gather(pm, "register_collectors", "collector", settings=settings_from_dict({}))
    assert issubclass(PluginError, ConfigError)  # exit code 2 with the message


def test_register_knows_which_plugin_gave_what():
    class Two:
        @hookimpl
        def register_exporters(self, register):
            register("xml", object)

    pm = make_plugin_manager(settings_from_dict({}), entrypoints=False, extra=[("two", Two())])
    reg = gather(pm, "register_exporters", "exporter", settings=settings_from_dict({}))
    assert reg.owner == {"csv": "csv", "jsonl": "jsonl", "xml": "two"}


def test_register_with_a_bad_call_is_a_plugin_error():
    class Bad:
        @hookimpl
        def register_exporters(self, register):
            register("a", "b", "c")

    pm = make_plugin_manager(settings_from_dict({}), entrypoints=False, extra=[("bad", Bad())])
    with pytest.raises(PluginError, match=r"plugin 'bad': register\(\) takes"):
        gather(pm, "register_exporters", "exporter", settings=settings_from_dict({}))


def test_a_registration_hook_that_raises_is_isolated_unless_asked_to_raise():
    class Boom:
        @hookimpl
        def register_collectors(self, register):
            raise RuntimeError("no sensors driver")

    s = settings_from_dict({})
    pm = make_plugin_manager(s, entrypoints=False, extra=[("boom", Boom())])
    reg = gather(pm, "register_collectors", "collector", settings=s)
    assert reg.failures == {"boom": "RuntimeError: no sensors driver"}
    assert "cpu" in reg
    with pytest.raises(RuntimeError, match="no sensors driver"):
        gather(pm, "register_collectors", "collector", isolate=False, settings=s)


def test_entry_point_plugins_are_found_when_installed():
    from importlib import metadata

    eps = {ep.name for ep in metadata.entry_points(group="dashfleet")}
    pm = make_plugin_manager(settings_from_dict({}))
    for name in eps:
        info = {i.name: i for i in plugin_infos(pm)}[name]
        assert info.source == "entrypoint" and info.enabled
    pm_without = make_plugin_manager(settings_from_dict({}), entrypoints=False)
    assert not eps & names(pm_without)


def test_testing_fixtures_give_a_fresh_manager_and_register_plugins(dashfleet_pm, dashfleet_register):
    class Probe:
        @hookimpl
        def register_exporters(self, register):
            register("probe", object)

    assert dashfleet_register(Probe(), "probe-plugin") == "probe-plugin"
    assert gather(dashfleet_pm, "register_exporters", "exporter",
                  settings=settings_from_dict({})).owner["probe"] == "probe-plugin"
    assert {i.name: i.source for i in plugin_infos(dashfleet_pm)}["probe-plugin"] == "host"
