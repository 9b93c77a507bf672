"""pytest fixtures for plugin authors, published as the `pytest11` entry point `dashfleet`.

Installed with DashFleet, these fixtures are available in any test suite without an import::

    def test_my_collector(dashfleet_engine):
        engine = dashfleet_engine(my_plugin_module, enabled=["my-plugin"])
        report, health = engine.cycle()
        assert "my.metric" in report.metrics

- ``dashfleet_settings`` -- a factory: ``dashfleet_settings({"plugins": {...}})`` -> validated
  Settings from a dict shaped like dashfleet.toml; no file and no environment are read.
- ``dashfleet_pm`` -- a fresh plugin manager with the built-in plugins only (no entry points, so
  what else is installed does not leak into the test).
- ``dashfleet_register`` -- ``dashfleet_register(plugin, name=None)`` registers a plugin object or
  module on ``dashfleet_pm`` (``check_pending()`` included) and unregisters it after the test.
- ``dashfleet_engine`` -- a factory: ``dashfleet_engine(*plugins, settings=None, enabled=None)``
  -> an Engine on a fresh plugin manager with those plugins registered; ``enabled`` is the
  ``[plugins] enabled`` allow-list (plugin names, including yours).

And one class: ``StorageContract``, the storage contract's test suite, for a storage backend's
own tests (subclass it with a ``storage_url`` fixture; see ``storage_contract.py``)::

    from dashfleet_core.testing import StorageContract

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def storage_url(self, tmp_path):
            return f"mydb:///{tmp_path}/fleet.db"

The fixtures import DashFleet only when used, and ``StorageContract`` only when imported, so
loading this plugin costs pytest nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

# the contract's plain asserts get pytest's explanations in a backend's test run too
pytest.register_assert_rewrite("dashfleet_core.testing.storage_contract")

if TYPE_CHECKING:
    from .storage_contract import StorageContract

__all__ = ["StorageContract"]


def __getattr__(name: str) -> Any:
    """`StorageContract` is imported on first use: it imports the models and the plugin manager."""
    if name == "StorageContract":
        from .storage_contract import StorageContract

        return StorageContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _plugin_name(plugin: Any) -> str:
    return (getattr(plugin, "PLUGIN_NAME", None) or getattr(plugin, "__name__", None)
            or type(plugin).__name__)


@pytest.fixture
def dashfleet_settings():
    """Factory: Settings from a dict shaped like dashfleet.toml (defaults when called bare)."""
    from dashfleet_core.config import settings_from_dict

    def make(data: dict | None = None):
        return settings_from_dict(data or {}, source="<test settings>")

    return make


@pytest.fixture
def dashfleet_pm(dashfleet_settings):
    """A fresh plugin manager: built-in plugins on default settings, no entry points."""
    from dashfleet_core.plugins import make_plugin_manager

    return make_plugin_manager(dashfleet_settings(), entrypoints=False)


@pytest.fixture
def dashfleet_register(dashfleet_pm):
    """Register a test plugin on `dashfleet_pm`; it is unregistered after the test."""
    from dashfleet_core.plugins import register_extra

    names: list[str] = []

    def register(plugin: Any, name: str | None = None) -> str:
        registered = register_extra(dashfleet_pm, plugin, name or _plugin_name(plugin))
        names.append(registered)
        return registered

    yield register
    for name in names:
        if dashfleet_pm.get_plugin(name) is not None:
            dashfleet_pm.unregister(name=name)


@pytest.fixture
def dashfleet_engine(dashfleet_settings):
    """Factory: an Engine with the given plugins registered on a fresh plugin manager."""
    from dashfleet_core.engine import Engine
    from dashfleet_core.plugins import make_plugin_manager

    engines: list[Any] = []

    def make(*plugins: Any, settings=None, enabled: list[str] | None = None):
        if settings is None:
            data: dict = {}
            if enabled is not None:
                data = {"plugins": {"enabled": list(enabled)}}
            settings = dashfleet_settings(data)
        pm = make_plugin_manager(settings, entrypoints=False,
                                 extra=[(_plugin_name(p), p) for p in plugins])
        engine = Engine(settings, pm)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()
