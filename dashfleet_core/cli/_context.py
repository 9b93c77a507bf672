"""What every command needs first: validated settings and a plugin manager."""

from __future__ import annotations

from dataclasses import dataclass, field

import pluggy

from ..config import Settings, load_settings
from ..plugins import HookFailure, make_plugin_manager


@dataclass
class Context:
    settings: Settings
    pm: pluggy.PluginManager
    # plugins whose register_commands raised while `main` built the command line
    command_failures: list[HookFailure] = field(default_factory=list)


# (config path, Context) built by `main` while it asked plugins for commands; reused by the
# command so plugins are not discovered and imported twice in one run.
_preloaded: tuple[str | None, Context] | None = None


def preload(config_path: str | None) -> Context:
    """Build the Context once, before the command runs (raises ConfigError)."""
    global _preloaded
    settings = load_settings(config_path)
    ctx = Context(settings=settings, pm=make_plugin_manager(settings))
    _preloaded = (config_path, ctx)
    return ctx


def load(config_path: str | None, **overrides) -> Context:
    """Load config (raising ConfigError, which `main` turns into exit code 2) and plugins."""
    if _preloaded is not None and not overrides and _preloaded[0] == config_path:
        return _preloaded[1]
    settings = load_settings(config_path, overrides=overrides)
    return Context(settings=settings, pm=make_plugin_manager(settings))
