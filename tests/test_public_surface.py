"""What a plugin author imports: every public name of `dashfleet_core` resolves to the object its
module defines, importing the package loads none of them until asked, and the built-in plugins
are what the protocols say a plugin of their kind is."""

from __future__ import annotations

import importlib
import subprocess
import sys

import dashfleet_core
from dashfleet_core import Collector, ExportSink, HealthCheck, Notifier
from dashfleet_core.config import settings_from_dict
from dashfleet_core.engine import Engine
from dashfleet_core.exporting import exporters
from dashfleet_core.plugins import gather, make_plugin_manager


def test_every_public_name_is_the_object_of_its_module():
    for name, module in dashfleet_core._PUBLIC.items():
        defined = getattr(importlib.import_module(f"dashfleet_core.{module}"), name)
        assert getattr(dashfleet_core, name) is defined, name
    assert set(dashfleet_core._PUBLIC) <= set(dir(dashfleet_core))


def test_an_unknown_name_is_an_attribute_error():
    try:
        dashfleet_core.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_importing_the_package_loads_only_the_hook_markers():
    code = ("import sys, dashfleet_core; "
            "print(sorted(m for m in sys.modules if m.startswith('dashfleet_core')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['dashfleet_core', 'dashfleet_core.hookspecs']"


def test_the_built_in_plugins_are_what_the_protocols_describe(tmp_path):
    settings = settings_from_dict({})
    pm = make_plugin_manager(settings, entrypoints=False)
    engine = Engine(settings, pm)
    assert engine.collectors and all(isinstance(c, Collector) for c in engine.collectors.values())
    assert engine.health_checks and all(isinstance(h, HealthCheck) for h in engine.health_checks.values())
    notifiers = gather(pm, "register_notifiers", "notifier", settings=settings)
    assert notifiers and all(isinstance(n, Notifier) for n in notifiers.values())
    for name, factory in exporters(pm, settings).items():
        with open(tmp_path / f"out.{name}", "w", encoding="utf-8") as fh:
            sink = factory(fh)
            assert isinstance(sink, ExportSink), name
            sink.close()
