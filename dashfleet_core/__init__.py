"""DashFleet's framework: hookspecs, the plugin manager factory, config, models, health, engine.

What a plugin author needs is importable from here, e.g. `from dashfleet_core import hookimpl,
Reading, MetricInfo, Finding, ActionParams, BaseAction, Notification, Storage`. Only `hookimpl` and
`hookspec` load with the package; every other name loads its module on first use (PEP 562), so a
plugin that needs only `hookimpl` pays for nothing else.
"""

from __future__ import annotations

import importlib
from typing import Any

from .hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    # the data that crosses a boundary
    "Report": "models", "Health": "models", "Finding": "models", "MetricInfo": "models",
    "Event": "models", "Notification": "models", "MachineState": "models", "ActionResult": "models",
    # collectors and health checks
    "Reading": "collectors", "Collector": "collectors", "HealthCheck": "health",
    # actions
    "ActionParams": "actions", "BaseAction": "actions", "Action": "actions",
    "ActionContext": "actions", "ActionRefused": "actions",
    # notifiers and exporters
    "Notifier": "notifying", "ExportSink": "exporting", "ExporterFactory": "exporting",
    # storage
    "Storage": "storage", "StoredReport": "storage", "StorageError": "storage", "StorageFull": "storage",
    # settings
    "Settings": "config", "ConfigError": "config",
}

__all__ = ["hookimpl", "hookspec", "__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dashfleet_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
