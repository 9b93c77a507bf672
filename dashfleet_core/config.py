"""Load `dashfleet.toml`, apply environment overrides, and validate it with pydantic.

No file at all is a valid configuration: every setting has a default. A bad file is a
:class:`ConfigError` that names the file, the key and what was expected; hosts turn it into exit
code 2.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_ENV = "DASHFLEET_CONFIG"
DEFAULT_CONFIG_FILE = "dashfleet.toml"
# An agent's own config, as an enrolling download link writes it (server address and report key).
AGENT_CONFIG_FILE = "dashfleet-agent.toml"


class ConfigError(Exception):
    """A configuration problem a person can fix; the message says where and how."""

    exit_code = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Threshold(_Strict):
    """Warn and critical levels for one metric; `below = true` for metrics where low is bad."""

    warn: float
    critical: float
    below: bool = False
    sustain: int | None = Field(default=None, ge=1)
    hysteresis: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Threshold":
        bad = self.critical > self.warn if self.below else self.critical < self.warn
        if bad:
            word = "below" if self.below else "above"
            raise ValueError(
                f"critical ({self.critical}) must be at least as far {word} as warn ({self.warn})"
            )
        return self


DEFAULT_THRESHOLDS: dict[str, Threshold] = {
    "cpu.percent": Threshold(warn=80, critical=95),
    "memory.percent": Threshold(warn=90, critical=97),
    "disk.percent": Threshold(warn=90, critical=97),
}


class HealthSettings(_Strict):
    sustain: int = Field(default=3, ge=1)
    hysteresis: float = Field(default=5.0, ge=0)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _defaults_first(self) -> "HealthSettings":
        merged = dict(DEFAULT_THRESHOLDS)
        merged.update(self.thresholds)
        object.__setattr__(self, "thresholds", merged)
        return self


class StorageSettings(_Strict):
    url: str = "sqlite:///data/dashfleet.db"
    retention_days: float = Field(default=30, gt=0)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=0, le=65535)
    token: str | None = None
    data_dir: str = "data"
    ttl_seconds: int = Field(default=600, gt=0)
    # Machines silent for longer leave the fleet list (storage keeps them); `purge_days` is the
    # name it had first, still read.
    list_hide_days: float = Field(default=7, gt=0, validation_alias=AliasChoices("list_hide_days", "purge_days"))
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # `dashfleet web`'s HTTP server (waitress): worker threads, open connections, and how long a
    # request may take to arrive whole / a connection may sit idle before it is closed.
    threads: int = Field(default=8, ge=1, le=256)
    connection_limit: int = Field(default=1000, ge=10)
    request_timeout_seconds: float = Field(default=30, gt=0)
    idle_timeout_seconds: float = Field(default=30, gt=0)
    max_clock_ahead_seconds: float = Field(default=600, gt=0)
    report_self: bool = True
    self_interval: float = Field(default=10, gt=0)
    public_url: str | None = None
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDRs); empty: none is.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Refused credentials a client address may present in a minute before it is blocked for one.
    failed_auth_per_minute: int = Field(default=20, ge=1)
    # The original's open dashboard: anyone who reaches the server reads the `default`
    # organisation without logging in. For a trusted LAN only; the server warns at start.
    public_read: bool = False
    # A dashboard session ends after this long without a request.
    session_idle_minutes: float = Field(default=720, gt=0)
    # Operators and admins must log in with a second factor (TOTP).
    require_2fa: bool = False
    # Files that one-time agent links hand out (relative to the working folder, like the original).
    downloads_dir: str = "dist"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r:.70} is not an IP address or CIDR network such as "
                                 "10.0.0.5 or 10.0.0.0/24") from None
        return [entry.strip() for entry in value]


class AgentSettings(_Strict):
    server: str | None = None
    token: str | None = None
    # A file whose first line is the token: keeps it off command lines (`ps`) and environments.
    token_file: str | None = None
    machine_id: str | None = None
    interval: float = Field(default=10, gt=0)
    state_dir: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    spool_max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    spool_max_age_hours: float = Field(default=24, gt=0)
    batch_size: int = Field(default=50, ge=1, le=500)
    backoff_max_seconds: float = Field(default=30, gt=0)
    # Wait this long before trying again after a refusal no retry can fix (token, URL, certificate).
    blocked_retry_seconds: float = Field(default=300, gt=0)


class ActionSettings(_Strict):
    token: str | None = None
    allowed: list[str] | None = None
    rate_limit_per_minute: int = Field(default=30, ge=1)
    timeout_seconds: float = Field(default=60, gt=0)


class MaintenanceWindow(_Strict):
    """`[[alerts.maintenance]]`: a fixed window (`until`, optional `start`) or a daily one
    (`daily = "02:00-03:30"`, UTC) for one machine or the whole fleet (`machine = "*"`)."""

    machine: str = "*"
    org: str = "default"
    start: datetime | None = None
    until: datetime | None = None
    daily: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    reason: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> "MaintenanceWindow":
        if (self.daily is None) == (self.until is None):
            raise ValueError("give either until (with an optional start) or daily = \"HH:MM-HH:MM\"")
        if self.daily is not None and self.start is not None:
            raise ValueError("start goes with until, not with daily")
        return self


class AlertSettings(_Strict):
    """`[alerts]`: how often people hear about the same thing, and how events are grouped."""

    min_seconds: float = Field(default=300, ge=0)
    digest_window_seconds: float = Field(default=2, ge=0)
    digest_threshold: int = Field(default=5, ge=2)
    interval_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=60, gt=0)
    give_up_hours: float = Field(default=24, gt=0)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)


class PluginSettings(BaseModel):
    """`[plugins]`: which plugins run, extra modules, and each plugin's own table."""

    model_config = ConfigDict(extra="allow")

    enabled: list[str] | None = None
    disabled: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)

    def settings_for(self, name: str) -> dict[str, Any]:
        value = (self.model_extra or {}).get(name, {})
        return dict(value) if isinstance(value, dict) else {}


class Settings(_Strict):
    health: HealthSettings = Field(default_factory=HealthSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    actions: ActionSettings = Field(default_factory=ActionSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)

    # Where the settings came from, for error messages; not part of the file.
    source: str = Field(default="<defaults>", exclude=True)

    def plugin_settings(self, plugin: str, model: type["M"]) -> "M":
        """Validate `[plugins.<plugin>]` against the plugin's own pydantic model."""
        raw = self.plugins.settings_for(plugin)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, self.source, prefix=f"plugins.{plugin}")) from None


M = TypeVar("M", bound=BaseModel)

# Environment variables the seed's users know, and where they land.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "FLEET_TOKEN": ("server", "token"),
    "FLEET_TTL_SECONDS": ("server", "ttl_seconds"),
    "HOST": ("server", "host"),
    "PORT": ("server", "port"),
    "ACTION_TOKEN": ("actions", "token"),
    "WEBHOOK_URL": ("plugins", "webhook", "url"),
    "WEBHOOK_MIN_SECONDS": ("alerts", "min_seconds"),
    "DASHFLEET_STORAGE": ("storage", "url"),
}


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """`--config PATH`, else $DASHFLEET_CONFIG, else ./dashfleet.toml if it exists, else none."""
    if path:
        return Path(path)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def find_agent_config_file(path: str | os.PathLike[str] | None = None, *, frozen: bool | None = None,
                           executable: str | None = None) -> Path | None:
    """The agent's config: `--config PATH`, else $DASHFLEET_CONFIG, else `dashfleet-agent.toml`
    beside the executable of a frozen agent binary (where an enrolling link's zip unpacks it; a
    service's working folder is rarely its own), else `dashfleet-agent.toml` in the working
    folder, else what `find_config_file` finds. `frozen`/`executable` exist for tests."""
    if path or os.environ.get(CONFIG_ENV):
        return find_config_file(path)
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    candidates = [Path(executable or sys.executable).resolve().parent / AGENT_CONFIG_FILE] if frozen else []
    candidates.append(Path(AGENT_CONFIG_FILE))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return find_config_file(None)


class _Unset:
    """The type of UNSET."""

    def __repr__(self) -> str:
        return "UNSET"


# An override that removes a key the config file set (an override of None means "not given": the
# file's value stays). For settings with two forms, such as [agent] token / token_file.
UNSET: Any = _Unset()


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read the config file (if any), apply environment and explicit overrides, validate."""
    env = os.environ if env is None else env
    file = find_config_file(path)
    data: dict[str, Any] = {}
    source = "<defaults>"
    if file is not None:
        source = str(file)
        try:
            with open(file, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(
                f"{file}: config file not found (given by --config or ${CONFIG_ENV}); "
                "create it or leave the option out to run on defaults"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from None
    for var, keys in ENV_OVERRIDES.items():
        value = env.get(var)
        if value not in (None, ""):
            _set_path(data, keys, value)
    for dotted, value in (overrides or {}).items():
        if value is UNSET:
            _del_path(data, tuple(dotted.split(".")))
        elif value is not None:
            _set_path(data, tuple(dotted.split(".")), value)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    settings.source = source
    return settings


def settings_from_dict(data: dict[str, Any], source: str = "<dict>") -> Settings:
    """Validate settings given as a dict shaped like the TOML file (no file, no environment).

    For tests and embedding hosts; errors are ConfigErrors naming `source` and the key.
    """
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    settings.source = source
    return settings


ACTION_TOKEN_MIN_LENGTH = 16
FLEET_TOKEN_MIN_LENGTH = 16
TOKEN_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def check_server_tokens(fleet_token: str | None, action_token: str | None, source: str = "<defaults>") -> list[str]:
    """Refuse server tokens that give away more than they should; return warnings for the rest.

    Raises ConfigError for a blank token, an ACTION_TOKEN shorter than ACTION_TOKEN_MIN_LENGTH, or
    FLEET_TOKEN equal to ACTION_TOKEN (every agent could then run actions). A short FLEET_TOKEN is
    only a warning: agents already deployed with it must keep reporting.
    """
    errors = []
    for name, key, token in (("FLEET_TOKEN", "[server] token", fleet_token),
                             ("ACTION_TOKEN", "[actions] token", action_token)):
        if token is not None and not token.strip():
            errors.append(f"{name} ({key}) is blank; set a real secret or remove the key "
                          f"({name} unset: the server refuses those calls)")
    if action_token and action_token.strip() and len(action_token) < ACTION_TOKEN_MIN_LENGTH:
        errors.append(f"ACTION_TOKEN ([actions] token) has {len(action_token)} characters, fewer than "
                      f"{ACTION_TOKEN_MIN_LENGTH}: it can be guessed")
    if fleet_token and action_token and fleet_token == action_token:
        errors.append("FLEET_TOKEN and ACTION_TOKEN are the same, so every agent could run actions; "
                      "give ACTION_TOKEN its own value")
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors) + f"; {TOKEN_HINT}")
    if fleet_token and fleet_token.strip() and len(fleet_token) < FLEET_TOKEN_MIN_LENGTH:
        return [f"FLEET_TOKEN ([server] token) has {len(fleet_token)} characters, fewer than "
                f"{FLEET_TOKEN_MIN_LENGTH}: agents keep working, but change it when you can "
                f"(set the new one on the server and the agents); {TOKEN_HINT}"]
    return []


def _set_path(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _del_path(data: dict[str, Any], keys: tuple[str, ...]) -> None:
    node = data
    for key in keys[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return
    node.pop(keys[-1], None)


def _describe(exc: ValidationError, source: str, prefix: str = "") -> str:
    lines = [f"{source}: invalid configuration:"]
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        key = ".".join(p for p in (prefix, loc) if p)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see examples/dashfleet.toml)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  [{key}] {msg}" + _got(err))
    return "\n".join(lines)


def _got(err: dict[str, Any]) -> str:
    if err["type"] in ("missing", "extra_forbidden"):
        return ""
    value = err.get("input")
    text = repr(value)
    return f" (got {text[:60]})"
