"""What `dashfleet config check` finds out about plugins: every kind each enabled plugin
registers, and every problem that a host would only log (a plugin left out at load, a
registration hook that raised, an action left out, a settings table no enabled plugin reads).

A host keeps running past these problems, leaving the broken plugin out; the check exists so that
an operator sees all of them at once, before deploying, with a non-zero exit code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

import pluggy

from .config import Settings
from .plugins import HookFailure, Registry, call_each, gather, plugin_infos

log = logging.getLogger(__name__)


@dataclass
class PluginCheck:
    """Names found per kind (in the order DashFleet calls them), and the problems, one line each."""

    kinds: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_plugins(settings: Settings, pm: pluggy.PluginManager,
                  earlier: Iterable[HookFailure] = ()) -> PluginCheck:
    """Call every registration hook once on `pm` and collect what is registered and what failed.

    `earlier` are failures of hooks the host called already (`register_commands`, called when
    the command line was built), reported rather than called twice.
    """
    from .actions import ActionService
    from .engine import Engine
    from .exporting import exporters

    result = PluginCheck()
    for info in plugin_infos(pm):
        if info.error:
            result.problems.append(info.error)

    engine = Engine(settings, pm)
    registries: list[tuple[str, str, Registry]] = [
        ("collectors", "register_collectors", engine.collectors),
        ("health checks", "register_health_checks", engine.health_checks),
        ("storage backends", "register_storage", gather(pm, "register_storage", "storage backend",
                                                         settings=settings)),
        ("exporters", "register_exporters", exporters(pm, settings)),
        ("notifiers", "register_notifiers", gather(pm, "register_notifiers", "notifier", settings=settings)),
    ]
    for kind, hook, registry in registries:
        result.kinds[kind] = registry.names()
        result.problems += [f"plugin {plugin!r} failed in {hook}: {problem}"
                            for plugin, problem in registry.failures.items()]

    service = ActionService(settings, pm, None)
    result.kinds["actions"] = [name if service.is_allowed(name) else f"{name} (not in [actions] allowed)"
                               for name in service.actions]
    for name, why in service.rejected.items():
        if name.startswith("<plugin ") and name.endswith(">"):
            result.problems.append(f"plugin {name[8:-1]!r} failed in register_actions: "
                                   f"{why.removeprefix('register_actions failed: ')}")
        else:
            result.problems.append(f"action {name!r} left out: {why}")

    failures = list(earlier)
    if pm.hook.register_routes.get_hookimpls():  # Flask only when a plugin adds routes
        from flask import Flask

        app = Flask("dashfleet-config-check")
        failures += call_each(pm, "register_routes", {"app": app, "settings": settings})
    result.problems += [f"plugin {f.plugin!r} failed in {f.hook}: {f}" for f in failures]
    result.problems += _orphan_tables(settings, pm)
    return result


def _orphan_tables(settings: Settings, pm: pluggy.PluginManager) -> list[str]:
    """`[plugins.<name>]` tables of plugins that config does not enable: settings nobody reads."""
    enabled = {info.name for info in plugin_infos(pm) if info.enabled}
    enabled |= {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    return [f"{settings.source}: [plugins.{name}]: plugin {name!r} is not enabled, so nothing reads "
            f"this table; enable the plugin or remove the table"
            for name in (settings.plugins.model_extra or {}) if name not in enabled]
