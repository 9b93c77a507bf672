"""One test per hook in dashfleet_core.hookspecs (the meta-test in test_hooks_documented.py
checks that each has one). Each registers a small real plugin through the plugin manager and
checks that DashFleet calls it with the documented arguments and uses what it gives back. Hooks
whose callers live in other parts (storage, alerting, web) are exercised here through the same
call those parts make; their own tests cover the callers."""

from __future__ import annotations

import inspect
import io
import json
import os
import subprocess
import textwrap
from types import ModuleType

from conftest import dashfleet_cmd
from dashfleet_core import hookimpl, hookspecs
from dashfleet_core.collectors import Reading
from dashfleet_core.models import Event, Finding, Health, MetricInfo, Notification, Report
from dashfleet_core.plugins import gather


class Probe:
    """A collector with one metric, configurable through `[plugins.probe] value`."""

    name = "probe"
    metrics = [MetricInfo(name="probe.value", unit="", description="a test value")]

    def __init__(self, value: float) -> None:
        self.value = value

    def collect(self) -> Reading:
        return Reading(metrics={"probe.value": self.value}, facts={"probe.note": "hi"})


def test_hook_register_collectors(dashfleet_settings):
    seen = {}

    class Plugin:
        @hookimpl
        def register_collectors(self, register, settings):
            seen["settings"] = settings
            register(Probe(float(settings.plugins.settings_for("probe")["value"])))

    settings = dashfleet_settings({"plugins": {"enabled": ["probe"], "probe": {"value": 41.5}}})
    from dashfleet_core.engine import Engine
    from dashfleet_core.plugins import make_plugin_manager

    pm = make_plugin_manager(settings, entrypoints=False, extra=[("probe", Plugin())])
    engine = Engine(settings, pm)
    report, _ = engine.cycle("m-1")
    assert seen["settings"] is settings
    assert report.metrics == {"probe.value": 41.5} and report.facts == {"probe.note": "hi"}
    assert engine.collectors.owner["probe"] == "probe"


def test_hook_register_health_checks(dashfleet_engine):
    calls = []

    class Plugin:
        @hookimpl
        def register_health_checks(self, register):
            class Check:
                name = "probe-check"

                def check(self, metrics, thresholds):
                    calls.append((dict(metrics), set(thresholds)))
                    return [Finding(metric="probe.value", value=metrics["probe.value"], threshold=1,
                                    severity="critical", message="probe too high", source=self.name)]

            register(Check())

        @hookimpl
        def register_collectors(self, register):
            register(Probe(5.0))

    engine = dashfleet_engine(Plugin(), enabled=["Plugin"])
    _, health = engine.cycle("m-1")
    assert calls == [({"probe.value": 5.0}, {"cpu.percent", "memory.percent", "disk.percent"})]
    assert (health.status, health.score) == ("critical", 50)
    assert [f.message for f in health.findings] == ["probe too high"]


def test_hook_register_storage(dashfleet_settings):
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    made = []
    seen = []

    class Plugin:
        @hookimpl
        def register_storage(self, register, settings):
            seen.append(settings)
            label = settings.plugins.settings_for("memtest-plugin").get("label", "memtest")

            def factory(url, settings):
                made.append((url, settings))
                return {"backend": label, "url": url}

            register("memtest", factory)

    settings = dashfleet_settings({"storage": {"url": "memtest://somewhere"},
                                   "plugins": {"memtest-plugin": {"label": "mem"}}})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("memtest-plugin", Plugin())])
    backend = open_storage(settings, pm)
    assert backend == {"backend": "mem", "url": "memtest://somewhere"}
    assert made == [("memtest://somewhere", settings)]
    assert seen == [settings] and seen[0] is settings
    assert gather(pm, "register_storage", "storage backend",
                  settings=settings).owner["memtest"] == "memtest-plugin"


def test_hook_register_exporters(dashfleet_engine, dashfleet_settings):
    from dashfleet_core.exporting import export_record, exporters as registry_of

    class Plugin:
        @hookimpl
        def register_exporters(self, register, settings):
            end = settings.plugins.settings_for("Plugin").get("end", "closed")

            class Names:
                def __init__(self, stream):
                    self.stream = stream

                def write(self, record):
                    self.stream.write(",".join(sorted(record["metrics"])) + "\n")

                def close(self):
                    self.stream.write(end + "\n")

            register("names", Names)

    settings = dashfleet_settings({"plugins": {"enabled": ["cpu", "Plugin"], "Plugin": {"end": "done"}}})
    engine = dashfleet_engine(Plugin(), settings=settings)
    exporters = registry_of(engine.pm, engine.settings)
    assert {"csv", "jsonl", "names"} <= set(exporters.names())
    record = export_record(*engine.cycle("m-1", 1))
    outputs = {}
    for name in ("csv", "jsonl", "names"):
        stream = io.StringIO()
        sink = exporters[name](stream)
        sink.write(record)
        sink.close()
        outputs[name] = stream.getvalue()
    header, row = outputs["csv"].splitlines()[:2]
    assert header.startswith("machine_id,seq,collected_at,health.score") and row.startswith("m-1,1,")
    assert json.loads(outputs["jsonl"])["metrics"]["cpu.percent"] == record["metrics"]["cpu.percent"]
    assert outputs["names"].splitlines()[-1] == "done" and "cpu.percent" in outputs["names"]
    assert record["collected_at"].utcoffset() is not None  # a timezone-aware datetime


def test_hook_register_notifiers(dashfleet_settings):
    from pydantic import BaseModel

    from dashfleet_core.alerting.delivery import load_notifiers
    from dashfleet_core.plugins import make_plugin_manager

    sent = []

    class Options(BaseModel):
        prefix: str | None = None

    class Recorder:
        name = "recorder"

        def __init__(self, options):
            self.options = options
            self.configured = options.prefix is not None  # off until [plugins.recorder] prefix is set

        def send(self, message):
            sent.append(f"{self.options.prefix}{message.title}")

    class Plugin:
        @hookimpl
        def register_notifiers(self, register, settings):
            register(Recorder(settings.plugin_settings("recorder", Options)))

    def notifiers(table):
        settings = dashfleet_settings({"plugins": {"recorder": table}} if table else {})
        pm = make_plugin_manager(settings, entrypoints=False, extra=[("recorder", Plugin())])
        return gather(pm, "register_notifiers", "notifier", settings=settings), load_notifiers(pm, settings)

    registered, configured = notifiers(None)
    assert registered.owner["recorder"] == "recorder" and "recorder" not in configured  # listed, off
    registered, configured = notifiers({"prefix": "[fleet] "})
    configured["recorder"].send(Notification(title="m-1 is critical", text="cpu.percent is 99"))
    assert sent == ["[fleet] m-1 is critical"]


def test_hook_register_actions(dashfleet_settings, tmp_path):
    from dashfleet_core.actions import ActionParams, ActionService
    from dashfleet_core.models import ActionResult
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    class Plugin:
        @hookimpl
        def register_actions(self, register, settings):
            greeting = settings.plugins.settings_for("echo-plugin").get("greeting", "")

            class Echo:
                name = "echo_test"
                description = "returns its parameter"
                platforms = ("linux", "windows", "macos")
                changes_machine = False

                class Params(ActionParams):
                    text: str

                def run(self, params, context):
                    return ActionResult(action=self.name, ok=True, summary=greeting + params.text)

            register(Echo())

    settings = dashfleet_settings({"storage": {"url": f"sqlite:///{tmp_path / 'audit.db'}"},
                                   "plugins": {"echo-plugin": {"greeting": "hi "}}})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("echo-plugin", Plugin())])
    actions = gather(pm, "register_actions", "action", settings=settings)
    assert actions.owner["echo_test"] == "echo-plugin"
    storage = open_storage(settings, pm)
    try:
        result = ActionService(settings, pm, storage).run("echo_test", {"text": "hello"}, actor="test")
    finally:
        storage.close()
    assert (result.ok, result.summary) == (True, "hi hello")


def _cli(args, cwd, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    env["PYTHONPATH"] = str(tmp_path)
    return subprocess.run(dashfleet_cmd() + args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_hook_register_commands(tmp_path):
    (tmp_path / "hello_plugin.py").write_text(textwrap.dedent("""
        import click
        from pydantic import BaseModel
        from dashfleet_core import hookimpl

        class Options(BaseModel):
            greeting: str = "hello"

        @hookimpl
        def register_commands(cli, settings):
            greeting = settings.plugin_settings("hello_plugin", Options).greeting

            @cli.command()
            @click.argument("who")
            def hello(who):
                '''Say hello (added by a plugin).'''
                click.echo(f"{greeting} {who}")
    """))
    (tmp_path / "dashfleet.toml").write_text('[plugins]\nmodules = ["hello_plugin"]\n')
    r = _cli(["hello", "fleet"], tmp_path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello fleet\n"
    assert "hello" in _cli(["--help"], tmp_path, tmp_path).stdout
    (tmp_path / "dashfleet.toml").write_text('[plugins]\nmodules = ["hello_plugin"]\n'
                                             '[plugins.hello_plugin]\ngreeting = "hi"\n')
    r = _cli(["hello", "fleet"], tmp_path, tmp_path)
    assert (r.returncode, r.stdout) == (0, "hi fleet\n"), r.stderr  # read from the loaded config


def test_hook_register_routes(settings_factory):
    import flask

    from dashfleet_core.fleet import Fleet
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_web import create_app

    seen = []

    class Plugin:
        @hookimpl
        def register_routes(self, app, settings):
            seen.append(settings)
            answer = settings.plugins.settings_for("routes").get("answer", True)
            bp = flask.Blueprint("probe", __name__)

            @bp.get("/probe")
            def probe():
                return {"probe": answer}

            app.register_blueprint(bp)

    settings = settings_factory({"plugins.routes.answer": "yes"})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("routes", Plugin())])
    fleet = Fleet(settings, pm=pm)
    try:
        app = create_app(fleet=fleet, start=False)
        response = app.test_client().get("/probe")
    finally:
        fleet.storage.close()
    assert response.status_code == 200 and response.get_json() == {"probe": "yes"}
    assert seen == [settings] and seen[0] is settings


def _lifecycle_plugin(tmp_path) -> None:
    (tmp_path / "life_plugin.py").write_text(textwrap.dedent(f"""
        from dashfleet_core import hookimpl

        LOG = {str(tmp_path / "life.log")!r}

        @hookimpl
        def startup(engine):
            with open(LOG, "a") as fh:
                fh.write(f"startup {{len(engine.collectors)}}\\n")

        @hookimpl
        def shutdown(engine):
            with open(LOG, "a") as fh:
                fh.write("shutdown\\n")
    """))
    (tmp_path / "dashfleet.toml").write_text(
        '[plugins]\nmodules = ["life_plugin"]\nenabled = ["cpu", "memory", "life_plugin"]\n')


def test_hook_startup(tmp_path):
    _lifecycle_plugin(tmp_path)
    r = _cli(["watch", "--count", "2", "--interval", "0.1"], tmp_path, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "life.log").read_text().splitlines()
    assert lines[0] == "startup 2"  # called once, with the engine built from config


def test_hook_shutdown(tmp_path):
    _lifecycle_plugin(tmp_path)
    r = _cli(["watch", "--count", "1", "--interval", "0.1"], tmp_path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "life.log").read_text().splitlines() == ["startup 2", "shutdown"]


def test_hook_report_stored(dashfleet_pm, dashfleet_register):
    got = []

    class Plugin:
        @hookimpl
        def report_stored(self, report, health):
            got.append((report, health))

    dashfleet_register(Plugin(), "stored-probe")
    report = Report(machine_id="m-1", seq=3, metrics={"cpu.percent": 12.0})
    health = Health(score=100, status="ok")
    dashfleet_pm.hook.report_stored(report=report, health=health, org="default")
    assert got == [(report, health)]


def test_hook_health_changed(dashfleet_pm, dashfleet_register):
    got = []

    class Plugin:
        @hookimpl
        def health_changed(self, event):
            got.append(event)

    class Other:
        @hookimpl
        def health_changed(self, event):
            got.append(("other", event.kind))

    dashfleet_register(Plugin(), "changed-probe")
    dashfleet_register(Other(), "changed-other")
    event = Event(machine_id="m-1", kind="status_changed", previous="ok", status="critical", score=40)
    dashfleet_pm.hook.health_changed(event=event)
    assert event in got and ("other", "status_changed") in got


# --- settings: one way, the same in every registration hook ----------------------------------------

REGISTRATION_HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("register_"))

RECORDER = '''
from pydantic import BaseModel
from dashfleet_core import hookimpl

LOG = {log!r}

class Options(BaseModel):
    mark: str = "unset"

def _seen(hook, settings):
    mark = settings.plugin_settings("settings_probe", Options).mark
    with open(LOG, "a") as fh:
        fh.write(f"{{hook}} {{id(settings)}} {{mark}}\\n")
'''


def _recorder_source(log) -> str:
    """A plugin module implementing every register_* hook: each records which settings object it
    got and what it read from `[plugins.settings_probe]`, and registers nothing."""
    source = RECORDER.format(log=str(log))
    for hook in REGISTRATION_HOOKS:
        args = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
        source += f"\n@hookimpl\ndef {hook}({args}):\n    _seen({hook!r}, settings)\n"
    return source


def _seen_lines(log) -> dict[str, list[tuple[str, str]]]:
    seen: dict[str, list[tuple[str, str]]] = {}
    for line in log.read_text().splitlines():
        hook, ident, mark = line.split(" ")
        seen.setdefault(hook, []).append((ident, mark))
    return seen


def test_every_registration_hook_gets_settings():
    assert set(REGISTRATION_HOOKS) >= {"register_collectors", "register_storage", "register_notifiers",
                                       "register_actions", "register_commands", "register_routes"}
    for hook in REGISTRATION_HOOKS:
        params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
        assert params[-1] == "settings", f"{hook}{tuple(params)} does not take settings"


def test_config_check_hands_every_registration_hook_the_same_settings(tmp_path):
    log = tmp_path / "seen.log"
    (tmp_path / "settings_probe.py").write_text(_recorder_source(log))
    (tmp_path / "dashfleet.toml").write_text(
        '[plugins]\nmodules = ["settings_probe"]\n[plugins.settings_probe]\nmark = "from-the-file"\n')
    r = _cli(["config", "check"], tmp_path, tmp_path)
    assert r.returncode == 0, r.stderr
    seen = _seen_lines(log)
    # every registration hook was called, in this one process, with one and the same object
    assert sorted(seen) == REGISTRATION_HOOKS
    assert len({ident for calls in seen.values() for ident, _ in calls}) == 1
    assert {mark for calls in seen.values() for _, mark in calls} == {"from-the-file"}


def test_the_hosts_hand_every_registration_hook_the_same_settings(settings_factory, tmp_path):
    """The callers the hosts use (engine, storage, exporters, alerting, actions, web app) each
    pass the settings they were built with."""
    from dashfleet_core.actions import ActionService
    from dashfleet_core.alerting.delivery import load_notifiers
    from dashfleet_core.exporting import exporters
    from dashfleet_core.fleet import Fleet
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_web import create_app

    log = tmp_path / "seen.log"
    module = ModuleType("settings_probe")
    exec(_recorder_source(log), module.__dict__)
    settings = settings_factory({"plugins.modules": [], "plugins.settings_probe.mark": "hosts"})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("settings_probe", module)])
    fleet = Fleet(settings, pm=pm)  # engine (collectors, health checks), storage, alerting (notifiers)
    try:
        create_app(fleet=fleet, start=False)  # routes
        exporters(pm, settings)
        load_notifiers(pm, settings)
        ActionService(settings, pm, fleet.storage)
    finally:
        fleet.storage.close()
    seen = _seen_lines(log)
    assert sorted(seen) == [h for h in REGISTRATION_HOOKS if h != "register_commands"]  # CLI: above
    assert {ident for calls in seen.values() for ident, _ in calls} == {str(id(settings))}
    assert {mark for calls in seen.values() for _, mark in calls} == {"hosts"}
