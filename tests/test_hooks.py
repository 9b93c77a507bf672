"""One test per hook in dashfleet_core.hookspecs (the meta-test in test_hooks_documented.py
checks that each has one). Each registers a small real plugin through the plugin manager and
checks that DashFleet calls it with the documented arguments and uses what it gives back. Hooks
whose callers live in other parts (storage, alerting, web) are exercised here through the same
call those parts make; their own tests cover the callers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import textwrap

from conftest import dashfleet_cmd
from dashfleet_core import hookimpl
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

    class Plugin:
        @hookimpl
        def register_storage(self, register):
            def factory(url, settings):
                made.append((url, settings))
                return {"backend": "memtest", "url": url}

            register("memtest", factory)

    settings = dashfleet_settings({"storage": {"url": "memtest://somewhere"}})
    pm = make_plugin_manager(settings, entrypoints=False, extra=[("memtest-plugin", Plugin())])
    backend = open_storage(settings, pm)
    assert backend == {"backend": "memtest", "url": "memtest://somewhere"}
    assert made == [("memtest://somewhere", settings)]
    assert gather(pm, "register_storage", "storage backend").owner["memtest"] == "memtest-plugin"


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


def test_hook_register_notifiers(dashfleet_pm, dashfleet_register):
    sent = []

    class Plugin:
        @hookimpl
        def register_notifiers(self, register):
            class Recorder:
                name = "recorder"

                def send(self, message):
                    sent.append(message)

            register(Recorder())

    dashfleet_register(Plugin(), "recorder-plugin")
    notifiers = gather(dashfleet_pm, "register_notifiers", "notifier")
    assert notifiers.owner["recorder"] == "recorder-plugin"
    note = Notification(title="m-1 is critical", text="cpu.percent is 99")
    notifiers["recorder"].send(note)
    assert sent == [note]


def test_hook_register_actions(dashfleet_pm, dashfleet_register):
    from pydantic import BaseModel

    from dashfleet_core.models import ActionResult

    class Plugin:
        @hookimpl
        def register_actions(self, register):
            class Echo:
                name = "echo_test"
                description = "returns its parameter"
                platforms = ("linux", "windows")
                changes_machine = False

                class Params(BaseModel):
                    text: str

                def run(self, params, context):
                    return ActionResult(action=self.name, ok=True, summary=params.text)

            register(Echo())

    dashfleet_register(Plugin(), "echo-plugin")
    actions = gather(dashfleet_pm, "register_actions", "action")
    action = actions["echo_test"]
    assert actions.owner["echo_test"] == "echo-plugin"
    result = action.run(action.Params.model_validate({"text": "hello"}), None)
    assert (result.ok, result.summary) == (True, "hello")


def _cli(args, cwd, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DASHFLEET_CONFIG"}
    env["PYTHONPATH"] = str(tmp_path)
    return subprocess.run(dashfleet_cmd() + args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_hook_register_commands(tmp_path):
    (tmp_path / "hello_plugin.py").write_text(textwrap.dedent("""
        import click
        from dashfleet_core import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            @click.argument("who")
            def hello(who):
                '''Say hello (added by a plugin).'''
                click.echo(f"hello {who}")
    """))
    (tmp_path / "dashfleet.toml").write_text('[plugins]\nmodules = ["hello_plugin"]\n')
    r = _cli(["hello", "fleet"], tmp_path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello fleet\n"
    assert "hello" in _cli(["--help"], tmp_path, tmp_path).stdout


def test_hook_register_routes():
    import flask

    from dashfleet_core.config import settings_from_dict
    from dashfleet_core.plugins import make_plugin_manager

    class Plugin:
        @hookimpl
        def register_routes(self, app):
            bp = flask.Blueprint("probe", __name__)

            @bp.get("/probe")
            def probe():
                return {"probe": True}

            app.register_blueprint(bp)

    pm = make_plugin_manager(settings_from_dict({}), entrypoints=False, extra=[("routes", Plugin())])
    app = flask.Flask("probe-test")
    pm.hook.register_routes(app=app)
    response = app.test_client().get("/probe")
    assert response.status_code == 200 and response.get_json() == {"probe": True}


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
    dashfleet_pm.hook.report_stored(report=report, health=health)
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
