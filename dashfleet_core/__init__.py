"""DashFleet's framework: hookspecs, the plugin manager factory, config, models, health, engine.

Plugins import `hookimpl` from here: `from dashfleet_core import hookimpl`.
"""

from .hookspecs import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec", "__version__"]
__version__ = "0.1.0"
