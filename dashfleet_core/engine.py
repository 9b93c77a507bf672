"""The engine: the plugin manager, the registered collectors and checks, and a scheduler.

Hosts (CLI, agent, web) build one Engine from config and call it; they hold no collection or
scoring logic of their own. A failing plugin never stops a cycle: its error is logged and becomes a
finding.
"""

from __future__ import annotations

import logging
import platform
import re
import socket
from typing import Any, Callable

import pluggy

from . import health as health_mod
from .collectors import Reading
from .config import Settings
from .models import Finding, Health, Report, StatusDocument, utcnow
from .plugins import Registry, gather, make_plugin_manager

log = logging.getLogger(__name__)


def default_machine_id() -> str:
    """The hostname, made safe for a machine id. Hosts that need stability keep an id on disk."""
    name = re.sub(r"[^A-Za-z0-9._:@-]", "-", socket.gethostname()) or "localhost"
    return name.lstrip(".-_:@")[:128] or "localhost"


class Engine:
    """Collect, score and schedule, on the plugins that config enables."""

    def __init__(self, settings: Settings | None = None, pm: pluggy.PluginManager | None = None):
        self.settings = settings or Settings()
        self.pm = pm or make_plugin_manager(self.settings)
        self.collectors: Registry[Any] = gather(self.pm, "register_collectors", "collector",
                                                isolate=True, settings=self.settings)
        self.health_checks: Registry[Any] = gather(self.pm, "register_health_checks", "health check",
                                                   isolate=True, settings=self.settings)
        # plugins whose registration hook raised: reported as a finding every cycle
        self.setup_failures: list[Finding] = [
            _plugin_failure(f"plugin (in {hook})", plugin, message)
            for hook, registry in (("register_collectors", self.collectors),
                                   ("register_health_checks", self.health_checks))
            for plugin, message in registry.failures.items()
        ]
        self.hostname = socket.gethostname()
        self.os = f"{platform.system()} {platform.release()}".strip()
        self._scheduler = None

    # --- one cycle -----------------------------------------------------------------------------

    def collect(self) -> tuple[dict[str, float], dict[str, str], list[Finding]]:
        """Run every collector once. Returns metrics, facts, and findings for collectors that failed."""
        metrics: dict[str, float] = {}
        facts: dict[str, str] = {}
        failures: list[Finding] = list(self.setup_failures)
        for name, collector in self.collectors.items():
            try:
                reading: Reading = collector.collect()
            except Exception as exc:  # one plugin's failure never stops the cycle
                log.warning("collector %r failed: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                failures.append(_plugin_failure("collector", name, exc))
                continue
            metrics.update(reading.metrics)
            facts.update(reading.facts)
        return metrics, facts, failures

    def evaluate(self, metrics: dict[str, float], extra: list[Finding] | None = None) -> Health:
        """Run every health check on `metrics` and score the findings (plus `extra`)."""
        findings = list(extra or [])
        thresholds = self.settings.health.thresholds
        for name, check in self.health_checks.items():
            try:
                findings.extend(check.check(metrics, thresholds))
            except Exception as exc:
                log.warning("health check %r failed: %s", name, exc)
                findings.append(_plugin_failure("health check", name, exc))
        return health_mod.score(findings)

    def cycle(self, machine_id: str | None = None, seq: int | None = None) -> tuple[Report, Health]:
        """Collect, build the report, score it: one full cycle."""
        metrics, facts, failures = self.collect()
        report = Report(
            machine_id=machine_id or default_machine_id(),
            hostname=self.hostname,
            os=self.os,
            agent_version=_version(),
            seq=seq,
            collected_at=utcnow(),
            metrics=metrics,
            facts=facts,
        )
        return report, self.evaluate(report.metrics, failures)

    def snapshot(self, machine_id: str | None = None) -> StatusDocument:
        report, health = self.cycle(machine_id)
        return StatusDocument(
            machine_id=report.machine_id,
            hostname=report.hostname,
            collected_at=report.collected_at,
            metrics=report.metrics,
            facts=report.facts,
            health=health,
        )

    # --- scheduling ----------------------------------------------------------------------------

    def every(self, seconds: float, func: Callable[[], Any], job_id: str) -> None:
        """Run `func` every `seconds` on the engine's scheduler; its exceptions are logged."""
        scheduler = self._ensure_scheduler()

        def guarded() -> None:
            try:
                func()
            except Exception:
                log.exception("scheduled job %r failed", job_id)

        scheduler.add_job(guarded, "interval", seconds=seconds, id=job_id, replace_existing=True,
                          next_run_time=utcnow())

    def start(self) -> None:
        scheduler = self._ensure_scheduler()
        if not scheduler.running:
            scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self._scheduler = None

    def _ensure_scheduler(self):
        if self._scheduler is None:
            from apscheduler.schedulers.background import BackgroundScheduler

            self._scheduler = BackgroundScheduler(
                timezone="UTC",
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            )
        return self._scheduler

    # --- lifecycle hooks -----------------------------------------------------------------------

    def startup(self) -> None:
        self._call_each("startup")

    def shutdown(self) -> None:
        self._call_each("shutdown")

    def _call_each(self, hook_name: str) -> None:
        """Call an event hook plugin by plugin, so one plugin's exception does not skip the rest."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                impl.function(*[{"engine": self}[a] for a in impl.argnames])
            except Exception:
                log.exception("plugin %r failed in %s", impl.plugin_name, hook_name)


def _plugin_failure(kind: str, name: str, exc: Exception | str) -> Finding:
    what = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return Finding(severity="warn", message=f"{kind} {name!r} failed: {what}", source=name)


_VERSION: str | None = None


def _version() -> str:
    global _VERSION
    if _VERSION is None:
        from . import __version__

        _VERSION = __version__
    return _VERSION
