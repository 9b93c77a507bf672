"""One hook-calling path (`dashfleet_core.plugins.call_each`): a plugin whose `register_*` or
event hook raises is left out with one log line naming the plugin, the hook and the error, and the
other plugins and the host go on; implementations run in pluggy's order (tryfirst/trylast) with
`wrapper=True` wrappers around them; old-style `hookwrapper=True` is refused at load. Each host
path is exercised for real: the engine, a Fleet on a SQLite file, `dashfleet web`, `dashfleet
watch` / `export` and `dashfleet config check` as processes."""

from __future__ import annotations

import inspect
import logging
import os
import subprocess
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
import requests

from conftest import dashfleet_cmd, free_port
from dashfleet_core import hookimpl, hookspecs
from dashfleet_core.config import ConfigError
from dashfleet_core.engine import Engine
from dashfleet_core.models import Report, utcnow
from dashfleet_core.plugins import PluginRefused, call_each, gather, make_plugin_manager, plugin_infos

REGISTRATION_HOOKS = ["register_collectors", "register_health_checks", "register_storage",
                      "register_exporters", "register_notifiers", "register_actions",
                      "register_commands", "register_routes"]


def failure_lines(caplog, plugin: str, hook: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and f"plugin {plugin!r} failed in {hook}" in r.getMessage()]


def raising_source(hook: str, message: str = "plugin is broken") -> str:
    """The source of a plugin module whose implementation of `hook` raises RuntimeError(message)."""
    args = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    return f"""
@hookimpl
def {hook}({args}):
    raise RuntimeError({message!r})
"""


def raising(hook: str) -> ModuleType:
    """A plugin module, built in memory, whose `hook` raises RuntimeError("plugin is broken")."""
    module = ModuleType(f"raising_{hook}")
    exec("from dashfleet_core import hookimpl\n" + raising_source(hook), module.__dict__)
    return module


# --- registration hooks, through the callers the hosts use -------------------------------------


def test_raising_collector_and_health_check_registration_leaves_the_plugin_out_of_the_engine(
        dashfleet_settings, caplog):
    class Half:
        """Registers one collector, then raises: what it registered is left out as well."""

        @hookimpl
        def register_collectors(self, register):
            class Probe:
                name, metrics = "half", []

                def collect(self):
                    raise AssertionError("a plugin left out is never collected")

            register(Probe())
            raise RuntimeError("no sensors driver")

    settings = dashfleet_settings({})
    pm = make_plugin_manager(settings, entrypoints=False,
                             extra=[("half", Half()), ("sick", raising("register_health_checks"))])
    engine = Engine(settings, pm)
    assert "cpu" in engine.collectors and "half" not in engine.collectors
    assert "thresholds" in engine.health_checks
    report, health = engine.cycle("m-1")
    assert "cpu.percent" in report.metrics
    messages = {f.message for f in health.findings}
    assert "plugin (in register_collectors) 'half' failed: RuntimeError: no sensors driver" in messages
    assert failure_lines(caplog, "half", "register_collectors") == [
        "plugin 'half' failed in register_collectors: RuntimeError: no sensors driver"]
    assert failure_lines(caplog, "sick", "register_health_checks") == [
        "plugin 'sick' failed in register_health_checks: RuntimeError: plugin is broken"]


@pytest.mark.parametrize("hook, kind, builtin", [
    ("register_storage", "storage backend", "sqlite"),
    ("register_exporters", "exporter", "csv"),
    ("register_notifiers", "notifier", "webhook"),
    ("register_actions", "action", "flush_dns"),
])
def test_raising_registration_hook_leaves_only_that_plugin_out(dashfleet_settings, caplog, hook, kind,
                                                                builtin):
    settings = dashfleet_settings({})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("broken", raising(hook))])
    registry = gather(pm, hook, kind, settings=settings)
    assert builtin in registry
    assert registry.failures == {"broken": "RuntimeError: plugin is broken"}
    assert failure_lines(caplog, "broken", hook) == [f"plugin 'broken' failed in {hook}: RuntimeError: plugin is broken"]


def test_storage_opens_when_another_storage_plugin_fails_and_not_when_the_configured_one_does(
        settings_factory, tmp_path):
    from dashfleet_core.storage import open_storage

    settings = settings_factory()
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("broken", raising("register_storage"))])
    storage = open_storage(settings, pm)
    storage.close()

    class MemFs:  # the plugin that would handle memfs://, failing
        @hookimpl
        def register_storage(self, register):
            raise OSError("driver missing")

    pm = make_plugin_manager(settings, entrypoints=False, extra=[("memfs", MemFs())])
    with pytest.raises(ConfigError, match=r"no storage plugin handles memfs://.*plugin 'memfs' failed "
                                          r"in register_storage: OSError: driver missing"):
        open_storage(settings, pm, "memfs:///x")


def test_raising_register_actions_keeps_the_other_actions(dashfleet_settings):
    from dashfleet_core.actions import ActionService

    pm = make_plugin_manager(dashfleet_settings({}), entrypoints=False,
                             extra=[("broken", raising("register_actions"))])
    service = ActionService(dashfleet_settings({}), pm, None)
    assert "flush_dns" in service.actions
    assert service.rejected == {"<plugin broken>": "register_actions failed: RuntimeError: plugin is broken"}


def test_raising_register_commands_and_register_routes_are_isolated(dashfleet_settings, caplog):
    import click
    from flask import Flask

    class Good:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("hello", callback=lambda: None))

        @hookimpl
        def register_routes(self, app):
            app.add_url_rule("/hello", "hello", lambda: "hi")

    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no commands today")

        @hookimpl
        def register_routes(self, app):
            raise RuntimeError("no routes today")

    # Broken registered last: pluggy calls it first, and Good must still be called
    settings = dashfleet_settings({})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("good", Good()), ("broken", Broken())])
    group, app = click.Group(), Flask("test")
    assert [str(f) for f in call_each(pm, "register_commands", {"cli": group, "settings": settings})] == [
        "RuntimeError: no commands today"]
    assert [f.plugin for f in call_each(pm, "register_routes", {"app": app, "settings": settings})] == ["broken"]
    assert "hello" in group.commands
    assert app.test_client().get("/hello").text == "hi"
    assert len(failure_lines(caplog, "broken", "register_commands")) == 1
    assert len(failure_lines(caplog, "broken", "register_routes")) == 1


def test_the_web_host_serves_when_a_plugin_s_register_routes_raises(settings_factory, caplog):
    from dashfleet_core.fleet import Fleet
    from dashfleet_web.app import create_app

    class Broken:
        @hookimpl
        def register_routes(self, app):
            raise RuntimeError("no routes today")

    settings = settings_factory({"server.token": "a-fleet-token-for-this-test", "server.report_self": False})
    fleet = Fleet(settings, make_plugin_manager(settings, entrypoints=False, extra=[("broken", Broken())]))
    try:
        app = create_app(fleet=fleet, start=False)
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        fleet.stop()
    assert len(failure_lines(caplog, "broken", "register_routes")) == 1


def test_a_configuration_error_still_stops_the_start(dashfleet_settings):
    class Strict:
        @hookimpl
        def register_collectors(self, register, settings):
            raise ConfigError("[plugins.strict] key: required key is missing")

    settings = dashfleet_settings({})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("strict", Strict())])
    with pytest.raises(ConfigError, match="required key is missing"):
        Engine(settings, pm)


# --- event hooks -----------------------------------------------------------------------------


class Recorder:
    """Records each event hook call, under its own name."""

    def __init__(self, name: str, seen: list) -> None:
        self.name, self.seen = name, seen

    @hookimpl
    def startup(self, engine):
        self.seen.append((self.name, "startup"))

    @hookimpl
    def shutdown(self, engine):
        self.seen.append((self.name, "shutdown"))

    @hookimpl
    def report_stored(self, report, health):
        self.seen.append((self.name, "report_stored", report.machine_id))

    @hookimpl
    def health_changed(self, event):
        self.seen.append((self.name, "health_changed", event.kind))


class Exploding:
    @hookimpl
    def startup(self, engine):
        raise RuntimeError("startup exploded")

    @hookimpl
    def shutdown(self, engine):
        raise RuntimeError("shutdown exploded")

    @hookimpl
    def report_stored(self, report, health):
        raise RuntimeError("report_stored exploded")

    @hookimpl
    def health_changed(self, event):
        raise RuntimeError("health_changed exploded")


def test_raising_startup_and_shutdown_leave_the_other_plugins_called(dashfleet_settings, caplog):
    seen: list = []
    settings = dashfleet_settings({})
    # the exploding plugin is registered between two others: pluggy calls it second
    pm = make_plugin_manager(settings, entrypoints=False, extra=[
        ("before", Recorder("before", seen)), ("exploding", Exploding()), ("after", Recorder("after", seen))])
    engine = Engine(settings, pm)
    engine.startup()
    engine.shutdown()
    assert seen == [("after", "startup"), ("before", "startup"), ("after", "shutdown"), ("before", "shutdown")]
    for hook in ("startup", "shutdown"):
        assert failure_lines(caplog, "exploding", hook) == [
            f"plugin 'exploding' failed in {hook}: RuntimeError: {hook} exploded"]


def test_raising_report_stored_and_health_changed_leave_the_report_stored_and_the_others_told(
        settings_factory, caplog):
    from dashfleet_core.fleet import Fleet

    seen: list = []
    settings = settings_factory({"server.report_self": False, "health.sustain": 1})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[
        ("before", Recorder("before", seen)), ("exploding", Exploding()), ("after", Recorder("after", seen))])
    fleet = Fleet(settings, pm)
    try:
        assert fleet.ingest([Report(machine_id="web-01", seq=1, metrics={"cpu.percent": 10.0})]) == [True]
        assert fleet.ingest([Report(machine_id="web-01", seq=2, metrics={"cpu.percent": 99.0})]) == [True]
        assert fleet.storage.max_seq("web-01") == 2
        alerting = getattr(fleet, "alerting", None) or fleet.pm.get_plugin("alerting")
        alerting.tick(now=utcnow() + timedelta(seconds=10))
    finally:
        fleet.stop()
    assert [s for s in seen if s[1] == "report_stored"] == [
        ("after", "report_stored", "web-01"), ("before", "report_stored", "web-01")] * 2
    assert ("after", "health_changed", "status_changed") in seen
    assert ("before", "health_changed", "status_changed") in seen
    assert len(failure_lines(caplog, "exploding", "report_stored")) == 2  # once per report
    assert failure_lines(caplog, "exploding", "health_changed")[0] == (
        "plugin 'exploding' failed in health_changed: RuntimeError: health_changed exploded")


def test_the_failure_line_stays_one_line_when_the_error_quotes_what_an_agent_sent(dashfleet_settings, caplog):
    class Quoting:
        @hookimpl
        def report_stored(self, report, health):
            raise ValueError(f"cannot file {report.hostname}")

    pm = make_plugin_manager(dashfleet_settings({}), entrypoints=False, extra=[("quoting", Quoting())])
    report = Report(machine_id="m-1", hostname="pc\nERROR forged line", metrics={})
    call_each(pm, "report_stored", {"report": report, "health": None, "org": "default"})
    assert failure_lines(caplog, "quoting", "report_stored") == [
        "plugin 'quoting' failed in report_stored: ValueError: cannot file pc\u240aERROR forged line"]


# --- hook options ----------------------------------------------------------------------------


def test_tryfirst_and_trylast_are_honoured_in_pluggys_order(dashfleet_settings):
    seen: list = []

    def plugin(name: str, **opts):
        class Plugin:
            @hookimpl(**opts)
            def startup(self, engine):
                seen.append(name)
        return name, Plugin()

    settings = dashfleet_settings({})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[
        plugin("first", tryfirst=True), plugin("a"), plugin("b"), plugin("last", trylast=True)])
    engine = Engine(settings, pm)
    engine.startup()
    assert seen == ["first", "b", "a", "last"]
    seen.clear()
    pm.hook.startup(engine=engine)  # pluggy's own call: the same order
    assert seen == ["first", "b", "a", "last"]


def test_wrapper_runs_around_each_plugin_and_sees_its_outcome(dashfleet_settings, caplog):
    seen: list = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def startup(self, engine):
            seen.append("enter")
            try:
                result = yield
            except RuntimeError as exc:
                seen.append(f"saw {exc}")
                raise
            seen.append("leave")
            return result

    class Fine:
        @hookimpl
        def startup(self, engine):
            seen.append("fine")

    class Failing:
        @hookimpl
        def startup(self, engine):
            raise RuntimeError("failing")

    settings = dashfleet_settings({})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[
        ("fine", Fine()), ("failing", Failing()), ("wrapper", Wrapper())])
    Engine(settings, pm).startup()
    assert seen == ["enter", "saw failing", "enter", "fine", "leave"]
    assert failure_lines(caplog, "failing", "startup") == ["plugin 'failing' failed in startup: RuntimeError: failing"]


def test_a_wrapper_can_swallow_a_failure_and_a_broken_wrapper_is_blamed_and_left_out(dashfleet_settings, caplog):
    seen: list = []

    class Forgiving:
        @hookimpl(wrapper=True)
        def shutdown(self, engine):
            try:
                return (yield)
            except RuntimeError:
                seen.append("forgiven")
                return []

    class BrokenWrapper:
        @hookimpl(wrapper=True)
        def startup(self, engine):
            raise ValueError("wrapper bug")
            yield  # pragma: no cover - a generator that fails before yielding

    settings = dashfleet_settings({})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[
        ("one", Recorder("one", seen)), ("two", Recorder("two", seen)), ("exploding", Exploding()),
        ("forgiving", Forgiving()), ("broken-wrapper", BrokenWrapper())])
    engine = Engine(settings, pm)
    assert [(f.plugin, str(f)) for f in call_each(pm, "startup", {"engine": engine})] == [
        ("broken-wrapper", "ValueError: wrapper bug")]
    # the wrapper failed around the first plugin called (exploding), and was left out after it
    assert seen == [("two", "startup"), ("one", "startup")]
    assert failure_lines(caplog, "broken-wrapper", "startup") == [
        "plugin 'broken-wrapper' failed in startup: ValueError: wrapper bug"]
    seen.clear()
    assert call_each(pm, "shutdown", {"engine": engine}) == []
    assert seen == ["forgiven", ("two", "shutdown"), ("one", "shutdown")]


def test_old_style_hookwrapper_is_refused_naming_plugin_and_hook(dashfleet_settings, tmp_path, monkeypatch,
                                                                  caplog):
    (tmp_path / "old_wrapper_plugin.py").write_text(textwrap.dedent("""
        from dashfleet_core import hookimpl, hookspecs

        @hookimpl(hookwrapper=True)
        def startup(engine):
            yield

        @hookimpl
        def register_exporters(register):
            register("old", object)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = dashfleet_settings({"plugins": {"modules": ["old_wrapper_plugin"]}})
    pm = make_plugin_manager(settings, entrypoints=False)
    info = {i.name: i for i in plugin_infos(pm)}["old_wrapper_plugin"]
    assert not info.enabled and "startup uses the old-style hookwrapper=True" in info.error
    assert pm.get_plugin("old_wrapper_plugin") is None
    assert "old" not in gather(pm, "register_exporters", "exporter", settings=settings)  # left out whole
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [info.error]
    assert info.error.startswith("plugin 'old_wrapper_plugin' left out: its startup uses")
    Engine(settings, pm).startup()  # the host still starts

    import old_wrapper_plugin

    with pytest.raises(PluginRefused, match=r"plugin 'mine' left out: its startup uses the old-style "
                                            r"hookwrapper=True.*wrapper=True"):
        make_plugin_manager(dashfleet_settings({}), entrypoints=False, extra=[("mine", old_wrapper_plugin)])


# --- real hosts with a broken plugin ---------------------------------------------------------


def broken_plugin(tmp_path: Path, body: str, name: str = "broken_plugin") -> dict:
    """Write a plugin module into tmp_path; the environment that makes it importable."""
    (tmp_path / f"{name}.py").write_text("from dashfleet_core import hookimpl\n" + textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLEET_TOKEN", "HOST", "PORT", "DASHFLEET_STORAGE", "DASHFLEET_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def write_config(tmp_path: Path, extra: str = "", modules=("broken_plugin",)) -> Path:
    path = tmp_path / "dashfleet.toml"
    path.write_text(textwrap.dedent(f"""
        [storage]
        url = "sqlite:///{tmp_path}/dashfleet.db"
        [server]
        data_dir = "{tmp_path}"
        [plugins]
        modules = {list(modules)!r}
    """).replace("'", '"') + textwrap.dedent(extra))
    return path


def run(args, tmp_path, env):
    return subprocess.run(dashfleet_cmd() + args, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


RAISE_NOTIFIERS = """
@hookimpl
def register_notifiers(register):
    raise RuntimeError("notifier driver missing")
"""

RAISE_EXPORTERS = """
@hookimpl
def register_exporters(register):
    raise RuntimeError("exporter driver missing")
"""


def test_dashfleet_web_starts_and_serves_when_register_notifiers_raises(tmp_path):
    env = broken_plugin(tmp_path, RAISE_NOTIFIERS)
    config = write_config(tmp_path)
    port = free_port()
    proc = subprocess.Popen(dashfleet_cmd() + ["web", "--port", str(port), "--config", str(config)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "dashfleet web did not answer"
            time.sleep(0.1)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert "plugin 'broken_plugin' failed in register_notifiers: RuntimeError: notifier driver missing" in err


def test_dashfleet_watch_and_export_work_when_register_exporters_raises(tmp_path):
    env = broken_plugin(tmp_path, RAISE_EXPORTERS)
    config = write_config(tmp_path)
    line = "plugin 'broken_plugin' failed in register_exporters: RuntimeError: exporter driver missing"

    r = run(["watch", "--count", "1", "--config", str(config)], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert "health" in r.stdout and "Traceback" not in r.stderr

    out = tmp_path / "out.csv"
    r = run(["watch", "--count", "1", "--export-csv", str(out), "--config", str(config)], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(line) == 1
    assert out.read_text().startswith("machine_id,")

    r = run(["export", "--format", "jsonl", "--config", str(config)], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert line in r.stderr


# --- `dashfleet config check` ----------------------------------------------------------------


@pytest.mark.parametrize("hook", REGISTRATION_HOOKS)
def test_config_check_fails_naming_a_plugin_whose_registration_hook_raises(tmp_path, hook):
    env = broken_plugin(tmp_path, raising_source(hook, f"{hook} is broken"))
    r = run(["config", "check", "--config", str(write_config(tmp_path))], tmp_path, env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"plugin 'broken_plugin' failed in {hook}: RuntimeError: {hook} is broken" in r.stderr
    assert "1 problem(s)" in r.stdout
    assert "Traceback" not in r.stderr


def test_config_check_fails_naming_an_old_style_hookwrapper(tmp_path):
    env = broken_plugin(tmp_path, """
        @hookimpl(hookwrapper=True)
        def report_stored(report, health):
            yield
    """)
    r = run(["config", "check", "--config", str(write_config(tmp_path))], tmp_path, env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "plugin 'broken_plugin' left out: its report_stored uses the old-style hookwrapper=True" in r.stderr
    r = run(["plugins", "--config", str(write_config(tmp_path))], tmp_path, env)
    [line] = [line for line in r.stdout.splitlines() if "broken_plugin" in line]
    assert line.startswith("off broken_plugin") and "report_stored uses the old-style hookwrapper" in line


def test_config_check_fails_naming_an_action_left_out_and_why(tmp_path):
    env = broken_plugin(tmp_path, """
        from pydantic import BaseModel

        class Undocumented:
            name = "undocumented"
            description = ""
            platforms = ["linux", "windows"]
            changes_machine = False

            class Params(BaseModel):
                pass

            def run(self, params, context):
                pass

        @hookimpl
        def register_actions(register):
            register(Undocumented())
    """)
    r = run(["config", "check", "--config", str(write_config(tmp_path))], tmp_path, env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "action 'undocumented' left out: plugin 'broken_plugin': it has no description" in r.stderr


def test_config_check_fails_naming_a_table_of_a_plugin_that_is_not_enabled(tmp_path):
    env = broken_plugin(tmp_path, "")
    config = write_config(tmp_path, 'disabled = ["battery"]\n[plugins.battery]\nlow = 5\n', modules=())
    r = run(["config", "check", "--config", str(config)], tmp_path, env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "[plugins.battery]: plugin 'battery' is not enabled, so nothing reads this table" in r.stderr


def test_config_check_lists_every_kind(tmp_path):
    env = broken_plugin(tmp_path, "")
    r = run(["config", "check", "--config", str(write_config(tmp_path, modules=()))], tmp_path, env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    kinds = {line.split(" (")[0].strip(): line.split(": ", 1)[1].split(", ")
             for line in r.stdout.splitlines()[1:]}
    assert {"cpu", "memory"} <= set(kinds["collectors"])
    assert "thresholds" in kinds["health checks"]
    assert {"sqlite", "json"} <= set(kinds["storage backends"])
    assert {"csv", "jsonl"} <= set(kinds["exporters"])
    assert "webhook" in kinds["notifiers"]
    assert "flush_dns" in kinds["actions"]
