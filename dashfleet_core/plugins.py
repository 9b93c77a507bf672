"""The plugin manager factory and the registries filled by `register_*` hooks.

Built-in plugins are ordinary modules, found in the `dashfleet_plugins.<kind>` packages; third-party
plugins come from the `dashfleet` entry-point group and from `[plugins] modules` in config. All of
them go through the same steps: block what config disables, register the rest, `check_pending()` so
a misspelt hook name fails loudly.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
import re
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

import pluggy

from . import hookspecs
from .config import ConfigError, Settings
from .text import visible

log = logging.getLogger(__name__)

# Sub-packages of dashfleet_plugins, in load order. `[plugins] enabled` is an allow-list of
# collectors (and third-party plugins): the other built-in kinds are selected elsewhere — storage
# by its URL, exporters by a command-line flag, health checks by `[health]`, notifiers by their own settings
# (a webhook URL), actions by `[actions] allowed` — so listing collectors must not silently turn
# off alerting or remediation. `disabled` still turns any plugin off.
BUILTIN_KINDS = ("collectors", "health", "storage", "exporters", "notifiers", "actions")
SELECTED_ELSEWHERE = {"storage", "exporters", "health", "notifiers", "actions"}


class PluginError(ConfigError):
    """A plugin broke a rule of the framework (two objects with one name, a bad registration).

    It is a ConfigError because the fix is in config (disable one of the plugins): exit code 2.
    """


class PluginRefused(PluginError):
    """A plugin uses a hook option DashFleet does not support (old-style ``hookwrapper=True``).

    At start-up the plugin is left out with this message logged (`dashfleet config check`
    fails); a host or test registering the object itself gets the error.
    """


@dataclass
class PluginInfo:
    """What `dashfleet plugins` shows for one plugin, loaded or not."""

    name: str
    kind: str
    source: str  # "builtin", "entrypoint" or "config"
    module: str
    version: str
    enabled: bool
    hooks: list[str] = field(default_factory=list)
    error: str = ""  # why a plugin that config enables was left out at load


@dataclass
class _Candidate:
    name: str
    kind: str
    source: str
    module: str
    version: str
    load: Callable[[], Any]


def builtin_candidates() -> list[_Candidate]:
    """Every module under dashfleet_plugins.<kind> whose name does not start with `_`."""
    from importlib.metadata import PackageNotFoundError

    try:
        version = metadata.version("dashfleet")
    except PackageNotFoundError:  # running from a checkout that is not installed
        version = "dev"
    found: list[_Candidate] = []
    for kind in BUILTIN_KINDS:
        package = importlib.import_module(f"dashfleet_plugins.{kind}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            dotted = f"{package.__name__}.{info.name}"
            found.append(
                _Candidate(
                    name=_declared_name(dotted, info.name),
                    kind=kind,
                    source="builtin",
                    module=dotted,
                    version=version,
                    load=_importer(dotted),
                )
            )
    return found


_PLUGIN_NAME_RX = re.compile(r"""^PLUGIN_NAME\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", re.M)


def _declared_name(dotted: str, default: str) -> str:
    """A module may set PLUGIN_NAME when its file name cannot be the plugin name (json, csv).

    The name is read from the source (a string literal), so a disabled plugin is never imported:
    it costs neither start-up time nor memory. Where there is no source (a frozen build), the
    module is imported instead.
    """
    try:
        spec = importlib.util.find_spec(dotted)
        origin = spec.origin if spec is not None else None
        if origin and origin.endswith(".py"):
            with open(origin, encoding="utf-8") as fh:
                match = _PLUGIN_NAME_RX.search(fh.read())
            return match.group(1) if match else default
    except (OSError, ImportError, ValueError):
        pass
    module = importlib.import_module(dotted)
    return getattr(module, "PLUGIN_NAME", default)


def _importer(dotted: str) -> Callable[[], ModuleType]:
    return lambda: importlib.import_module(dotted)


def entrypoint_candidates() -> list[_Candidate]:
    found = []
    for ep in metadata.entry_points(group=hookspecs.PROJECT):
        dist = ep.dist
        found.append(
            _Candidate(
                name=ep.name,
                kind="third-party",
                source="entrypoint",
                module=ep.value,
                version=dist.version if dist is not None else "",
                load=ep.load,
            )
        )
    return found


def config_candidates(modules: Iterable[str]) -> list[_Candidate]:
    found = []
    for dotted in modules:
        found.append(
            _Candidate(
                name=dotted,
                kind="third-party",
                source="config",
                module=dotted,
                version="",
                load=_importer(dotted),
            )
        )
    return found


def make_plugin_manager(
    settings: Settings | None = None,
    *,
    entrypoints: bool = True,
    extra: Iterable[tuple[str, Any]] = (),
) -> pluggy.PluginManager:
    """Build the plugin manager a host runs on.

    `extra` is (name, plugin object) pairs registered after the others, for tests and hosts.
    Unknown names in `[plugins] enabled` / `disabled` are a ConfigError (exit 2).
    """
    settings = settings or Settings()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)

    candidates = builtin_candidates()
    if entrypoints:
        candidates += entrypoint_candidates()
    try:
        candidates += config_candidates(settings.plugins.modules)
    except Exception as exc:  # pragma: no cover - defensive
        raise ConfigError(f"{settings.source}: [plugins] modules: {exc}") from None

    extra = list(extra)
    known = {c.name for c in candidates} | {name for name, _ in extra}
    _check_names(settings, known)
    _check_plugin_tables(settings, known)

    enabled = settings.plugins.enabled
    disabled = set(settings.plugins.disabled)
    infos: list[PluginInfo] = []
    for cand in candidates:
        allowed = cand.name not in disabled and (
            enabled is None or cand.name in enabled or cand.kind in SELECTED_ELSEWHERE
        )
        info = PluginInfo(cand.name, cand.kind, cand.source, cand.module, cand.version, allowed)
        infos.append(info)
        if not allowed:
            pm.set_blocked(cand.name)
            continue
        try:
            plugin = cand.load()
        except Exception as exc:
            hint = "check [plugins] modules" if cand.source == "config" else "reinstall it"
            raise ConfigError(
                f"{settings.source}: plugin {cand.name!r} ({cand.module}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}; {hint}, or disable it with "
                f"[plugins] disabled = [\"{cand.name}\"]"
            ) from None
        try:
            _register(pm, plugin, cand.name)
        except PluginRefused as exc:
            log.error("%s", exc)
            info.enabled, info.error = False, str(exc)
            continue
        info.hooks = _hook_names(pm, cand.name)
    pm.dashfleet_plugins = infos  # type: ignore[attr-defined]
    for name, plugin in extra:
        register_extra(pm, plugin, name, check=False)
    _check_pending(pm)
    return pm


def _check_pending(pm: pluggy.PluginManager) -> None:
    """A hook implementation DashFleet has no spec for is a misspelling: fail loudly (exit 2)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or str(exc.plugin)
        raise ConfigError(
            f"plugin {name!r}: {exc}; check the hook name against docs/plugin-hooks.md, "
            f"or disable the plugin with [plugins] disabled = [\"{name}\"]"
        ) from None


def register_extra(pm: pluggy.PluginManager, plugin: Any, name: str | None = None, *,
                   check: bool = True) -> str:
    """Register one more plugin object (a host's or a test's) and list it in `dashfleet plugins`.

    Returns the name it was registered under. `check` runs `check_pending()` so a misspelt hook
    name fails here, not silently later.
    """
    name = name or getattr(plugin, "PLUGIN_NAME", None) or getattr(
        plugin, "__name__", type(plugin).__name__)
    _register(pm, plugin, name)
    if check:
        try:
            _check_pending(pm)
        except ConfigError:
            pm.unregister(name=name)
            raise
    infos = getattr(pm, "dashfleet_plugins", None)
    if infos is None:
        infos = pm.dashfleet_plugins = []  # type: ignore[attr-defined]
    module = getattr(plugin, "__module__", None) or getattr(plugin, "__name__", "")
    infos.append(PluginInfo(name, "extra", "host", str(module), "", True, _hook_names(pm, name)))
    return name


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # a hook implementation with the wrong arguments
        raise ConfigError(
            f"plugin {name!r} cannot be registered: {exc}; see docs/plugin-hooks.md for the "
            f"hook's arguments, or disable it with [plugins] disabled = [\"{name}\"]"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"plugin {name!r} cannot be registered: {exc}") from None
    old_style = sorted(impl.name for impl in pm.get_hookcallers(plugin) or []
                       if any(i.hookwrapper and i.plugin is plugin for i in impl.get_hookimpls()))
    if old_style:
        pm.unregister(plugin)
        raise PluginRefused(
            f"plugin {name!r} left out: its {', '.join(old_style)} uses the old-style "
            f"hookwrapper=True, which DashFleet does not support; write @hookimpl(wrapper=True) "
            f"(a generator that yields once and returns the result), see docs/plugin-hooks.md"
        )


def _hook_names(pm: pluggy.PluginManager, name: str) -> list[str]:
    plugin = pm.get_plugin(name)
    if plugin is None:
        return []
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def _check_names(settings: Settings, known: set[str]) -> None:
    listed = list(settings.plugins.enabled or []) + list(settings.plugins.disabled)
    unknown = sorted(set(listed) - known)
    if unknown:
        which = "enabled" if set(unknown) & set(settings.plugins.enabled or []) else "disabled"
        raise ConfigError(
            f"{settings.source}: [plugins] {which}: unknown plugin(s) {', '.join(map(repr, unknown))}; "
            f"known plugins are: {', '.join(sorted(known))}"
        )


def _check_plugin_tables(settings: Settings, known: set[str]) -> None:
    """Every `[plugins.<name>]` table must belong to a known plugin and be a table."""
    for name, value in (settings.plugins.model_extra or {}).items():
        if name not in known:
            raise ConfigError(
                f"{settings.source}: [plugins.{name}]: no plugin named {name!r}; "
                f"known plugins are: {', '.join(sorted(known))}"
            )
        if not isinstance(value, dict):
            raise ConfigError(
                f"{settings.source}: [plugins] {name}: expected a table of settings for plugin "
                f"{name!r} (write [plugins.{name}] with key = value lines), got {value!r:.60}"
            )


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    return list(getattr(pm, "dashfleet_plugins", []))


T = TypeVar("T")


class Registry(Generic[T]):
    """Objects registered through one `register_*` hook, by name, with the plugin that gave each."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self.owner: dict[str, str] = {}
        # plugin name -> "ExcType: message" for plugins whose registration hook raised
        self.failures: dict[str, str] = {}

    def add(self, name: str, obj: T, plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} without a name")
        if name in self._items:
            raise PluginError(
                f"{self.kind} {name!r} is registered by both {self.owner[name]!r} and {plugin!r}; "
                f"disable one of them in [plugins] disabled"
            )
        self._items[name] = obj
        self.owner[name] = plugin

    def discard_plugin(self, plugin: str) -> None:
        """Forget what one plugin registered (its hook failed half-way: leave it out whole)."""
        for name in [n for n, owner in self.owner.items() if owner == plugin]:
            del self._items[name], self.owner[name]

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._items.get(name, default)

    def items(self):
        return self._items.items()

    def values(self):
        return self._items.values()

    def names(self) -> list[str]:
        return list(self._items)


@dataclass(frozen=True)
class HookFailure:
    """One plugin's failure in one hook call: the plugin left out, the hook, the exception."""

    plugin: str
    hook: str
    error: Exception

    def __str__(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


Kwargs = Mapping[str, Any] | Callable[[str], Mapping[str, Any]]


def call_each(pm: pluggy.PluginManager, hook_name: str, kwargs: Kwargs) -> list[HookFailure]:
    """Call a hook plugin by plugin, in pluggy's order, so one plugin's failure skips no other.

    The order is pluggy's (``tryfirst`` first, then the last registered, ``trylast`` last); each
    implementation runs through pluggy's own caller with the hook's ``wrapper=True``
    implementations around it, so a wrapper sees each plugin's result or exception. ``kwargs`` are
    the hook's arguments, or a function of the plugin's name returning them (``register``
    callbacks that know their plugin). An implementation that raises is logged in one line naming
    the plugin, the hook and the error, and returned as a :class:`HookFailure`; a ``ConfigError``
    (the plugin's settings are wrong) propagates, so the host stops with exit code 2.
    """
    caller = getattr(pm.hook, hook_name)
    impls = caller.get_hookimpls()
    wrappers = [impl for impl in impls if impl.wrapper or impl.hookwrapper]
    plain = [impl for impl in impls if not (impl.wrapper or impl.hookwrapper)]
    failures: list[HookFailure] = []
    broken_wrappers: list[Any] = []
    for impl in reversed(plain):  # pluggy calls the end of the list first
        args = kwargs(impl.plugin_name) if callable(kwargs) else kwargs
        _check_arguments(caller, impl, args)
        others = [other.plugin for other in plain if other is not impl]
        try:
            pm.subset_hook_caller(hook_name, others + broken_wrappers)(**args)
        except ConfigError:
            raise
        except Exception as exc:  # one broken plugin does not stop the host
            culprit = _culprit(exc, impl, wrappers)
            failures.append(HookFailure(culprit.plugin_name, hook_name, exc))
            # one line: the message may quote what an agent sent (a hostname), so no line breaks
            log.error("plugin %r failed in %s: %s: %s", culprit.plugin_name, hook_name,
                      type(exc).__name__, visible(exc), exc_info=log.isEnabledFor(logging.DEBUG))
            if culprit is not impl:  # a broken wrapper is left out of the following calls
                broken_wrappers.append(culprit.plugin)
    return failures


def _check_arguments(caller: Any, impl: Any, args: Mapping[str, Any]) -> None:
    """The host must pass every argument the hook declares (a host's bug, not a plugin's)."""
    spec = caller.spec.argnames if caller.spec is not None else impl.argnames
    missing = [arg for arg in (*spec, *impl.argnames) if arg not in args]
    if missing:
        raise TypeError(f"{caller.name}() called without {', '.join(dict.fromkeys(missing))}, "
                        f"which plugin {impl.plugin_name!r} may use")


def _culprit(exc: BaseException, impl: Any, wrappers: list[Any]) -> Any:
    """The implementation whose code raised: the innermost frame that belongs to `impl` or to
    one of the wrappers around it (a wrapper may fail on its own); `impl` if none does."""
    codes = {}
    for each in (impl, *wrappers):
        code = getattr(each.function, "__code__", None)
        if code is not None:
            codes[code] = each
    tb = exc.__traceback__
    found = impl
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


def gather(pm: pluggy.PluginManager, hook_name: str, kind: str, *, isolate: bool = True,
           **hook_args: Any) -> Registry[Any]:
    """Call one registration hook, plugin by plugin, and collect what each registers.

    `register(obj)` names the object by `obj.name`; `register(name, obj)` names it explicitly.
    Each plugin gets its own `register`, so the registry knows who supplied what. `hook_args` are
    the hook's other arguments (e.g. `settings=`). A plugin whose hook raises is left out (what it
    registered before raising too), logged and listed in `registry.failures`; the host keeps
    running. `isolate=False` raises the first failure instead (for callers that must not go on
    without every plugin). A ConfigError always propagates (exit 2).
    """
    registry: Registry[Any] = Registry(kind)

    def arguments(plugin: str) -> dict[str, Any]:
        def register(*args: Any) -> None:
            if len(args) == 1:
                obj = args[0]
                registry.add(getattr(obj, "name", None), obj, plugin)
            elif len(args) == 2:
                registry.add(args[0], args[1], plugin)
            else:
                raise PluginError(
                    f"plugin {plugin!r}: register() takes (obj) or (name, obj), got {len(args)} args"
                )

        return {**hook_args, "register": register}

    for failure in call_each(pm, hook_name, arguments):
        if not isolate:
            raise failure.error
        registry.discard_plugin(failure.plugin)
        registry.failures[failure.plugin] = str(failure)
    return registry
