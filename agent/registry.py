"""The agent's settings from the Windows registry: `HKLM\\Software\\DashFleet\\Agent`, where the MSI
(packaging/wix/DashFleet.wxs) writes its SERVER, TOKEN and INTERVAL properties as the string values
`Server`, `Token` and `Interval`.

They are the machine's defaults: a flag, an environment variable or the config file's `[agent]` table
still wins over them, so an administrator can override an MSI install without reinstalling. An empty
value counts as absent. Read only on Windows (`winreg`, 64-bit view); `read_machine_settings` takes a
reader and a platform so the lookup is tested anywhere.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable, Mapping

from dashfleet_core.config import AgentSettings, ConfigError

log = logging.getLogger(__name__)

KEY = r"Software\DashFleet\Agent"
WHERE = "HKLM\\" + KEY

# Registry value name -> [agent] setting.
VALUES = {"Server": "server", "Token": "token", "Interval": "interval"}

Reader = Callable[[], Mapping[str, Any]]


def read_hklm() -> dict[str, Any]:
    """Every value under HKLM\\Software\\DashFleet\\Agent (64-bit view), {} when the key is absent."""
    import winreg  # Windows only

    found: dict[str, Any] = {}
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, KEY, 0, winreg.KEY_READ | winreg.KEY_WOW64_64KEY)
    except FileNotFoundError:
        return found
    with key:
        index = 0
        while True:
            try:
                name, data, _kind = winreg.EnumValue(key, index)
            except OSError:  # no more values
                return found
            found[name] = data
            index += 1


def read_machine_settings(reader: Reader | None = None, platform: str | None = None) -> dict[str, Any]:
    """The registry's agent settings as `{setting: value}` (Windows; {} elsewhere). A value that is
    not what its setting needs is a ConfigError naming the registry value and how to fix it."""
    platform = platform or sys.platform
    if not platform.startswith("win"):
        return {}
    raw = (reader or read_hklm)()
    settings: dict[str, Any] = {}
    for name, setting in VALUES.items():
        value = raw.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            continue
        if setting == "interval":
            value = _interval(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{WHERE}\\{name}: expected a string value (REG_SZ), got {type(value).__name__}; "
                              f"set it again or reinstall the MSI with {name.upper()}=...")
        settings[setting] = value
    return settings


def _interval(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(f"{WHERE}\\Interval: {value!r} is not a positive number of seconds; "
                          "set it to e.g. 10, or reinstall the MSI with INTERVAL=10")
    return seconds


def defaults_for(current: AgentSettings, machine: Mapping[str, Any]) -> dict[str, Any]:
    """The registry settings that fill what flags, environment and config file left unset, as
    `load_settings` overrides (`agent.<setting>`). The token counts as set when either it or a
    token file was given."""
    given = current.model_fields_set
    overrides: dict[str, Any] = {}
    for setting, value in machine.items():
        if setting == "token" and (current.token or current.token_file):
            continue
        if setting in given and getattr(current, setting) not in (None, ""):
            continue
        overrides[f"agent.{setting}"] = value
    if overrides:
        log.debug("agent settings from %s: %s", WHERE, ", ".join(sorted(k for k in overrides if k != "agent.token")))
    return overrides
