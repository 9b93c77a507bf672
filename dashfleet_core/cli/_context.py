"""What every command needs first: validated settings and a plugin manager."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from ..config import Settings, load_settings
from ..plugins import make_plugin_manager


@dataclass
class Context:
    settings: Settings
    pm: pluggy.PluginManager


def load(config_path: str | None, **overrides) -> Context:
    """Load config (raising ConfigError, which `main` turns into exit code 2) and plugins."""
    settings = load_settings(config_path, overrides=overrides)
    return Context(settings=settings, pm=make_plugin_manager(settings))
