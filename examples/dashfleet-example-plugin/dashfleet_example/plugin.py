"""The `example` plugin: a collector and a health check, with its own settings.

Settings, in dashfleet.toml::

    [plugins.example]
    max_uptime_days = 14     # warn when the machine has not rebooted for longer (default 30)
"""

from __future__ import annotations

import psutil
from pydantic import BaseModel, ConfigDict, Field

from dashfleet_core import hookimpl
from dashfleet_core.collectors import Reading
from dashfleet_core.models import Finding, MetricInfo

PLUGIN_NAME = "example"


class ExampleSettings(BaseModel):
    """`[plugins.example]`; unknown keys are refused so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")

    max_uptime_days: float = Field(default=30, gt=0)


class LoggedInUsers:
    """How many sessions are logged in (console, SSH, RDP)."""

    name = "example_users"
    metrics = [MetricInfo(name="example.logged_in_users", unit="",
                          description="Logged-in user sessions")]

    def collect(self) -> Reading:
        return Reading(metrics={"example.logged_in_users": float(len(psutil.users()))})


class RebootOverdue:
    """Warn when a machine has been up longer than the configured number of days."""

    name = "reboot_overdue"

    def __init__(self, max_uptime_days: float) -> None:
        self.max_uptime_days = max_uptime_days

    def check(self, metrics, thresholds) -> list[Finding]:
        uptime = metrics.get("uptime.seconds")
        if uptime is None:  # the uptime collector is disabled
            return []
        limit = self.max_uptime_days * 86400
        if uptime <= limit:
            return []
        return [Finding(
            metric="uptime.seconds", value=uptime, threshold=limit, severity="warn", source=self.name,
            message=(f"up for {uptime / 86400:.1f} days, more than {self.max_uptime_days:g}: "
                     f"plan a reboot to apply updates"),
        )]


@hookimpl
def register_collectors(register):
    register(LoggedInUsers())


@hookimpl
def register_health_checks(register, settings):
    config = settings.plugin_settings(PLUGIN_NAME, ExampleSettings)
    register(RebootOverdue(config.max_uptime_days))
