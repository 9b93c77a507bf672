"""The engine: the plugin manager, the registered collectors and checks, and a scheduler.

Hosts (CLI, agent, web) build one Engine from config and call it; they hold no collection or
scoring logic of their own. A failing plugin never stops a cycle: its error is logged and becomes a
finding.
"""

from __future__ import annotations

import logging
import math
import platform
import re
import socket
from datetime import timedelta
from typing import Any, Callable

import pluggy

from . import health as health_mod
from .health import HealthCheck
from .collectors import Collector, Reading
from .config import Settings
from .models import (MACHINE_ID_PATTERN, MAX_FACT_TEXT, MAX_FACTS, MAX_METRICS, METRIC_NAME_PATTERN,
                     MAX_NAME, CollectorFailure, Finding, Health, Report, StatusDocument, metric_range_error,
                     utcnow)
from .plugins import Registry, call_each, gather, make_plugin_manager
from .storage import StorageFull

log = logging.getLogger(__name__)

_NAME_RX = re.compile(METRIC_NAME_PATTERN)


def default_machine_id() -> str:
    """The hostname, made safe for a machine id. Hosts that need stability keep an id on disk."""
    name = re.sub(r"[^A-Za-z0-9._:@-]", "-", socket.gethostname()) or "localhost"
    return name.lstrip(".-_:@")[:128] or "localhost"


class Engine:
    """Collect, score and schedule, on the plugins that config enables."""

    def __init__(self, settings: Settings | None = None, pm: pluggy.PluginManager | None = None):
        self.settings = settings or Settings()
        self.pm = pm or make_plugin_manager(self.settings)
        self.collectors: Registry[Collector] = gather(self.pm, "register_collectors", "collector",
                                                      isolate=True, settings=self.settings)
        self.health_checks: Registry[HealthCheck] = gather(self.pm, "register_health_checks", "health check",
                                                           isolate=True, settings=self.settings)
        # plugins whose registration hook raised: reported as a finding every cycle
        self.setup_failures: list[Finding] = [
            _plugin_failure(f"plugin (in {hook})", plugin, message)
            for hook, registry in (("register_collectors", self.collectors),
                                   ("register_health_checks", self.health_checks))
            for plugin, message in registry.failures.items()
        ]
        self.hostname = socket.gethostname()[:255]
        self.os = f"{platform.system()} {platform.release()}".strip()
        self._scheduler = None
        self._good_names: set[str] = set()
        self._machine_id_ok: str | None = None

    # --- one cycle -----------------------------------------------------------------------------

    def collect(self) -> tuple[dict[str, float], dict[str, str], list[Finding]]:
        """Run every collector once. Returns metrics, facts, and findings for collectors that failed
        or returned values a report cannot hold (those values are dropped, the rest kept)."""
        metrics: dict[str, float] = {}
        facts: dict[str, str] = {}
        failures: list[Finding] = list(self.setup_failures)
        for name, collector in self.collectors.items():
            try:
                reading: Reading = collector.collect()
                problems = self._accept(reading, metrics, facts)
            except Exception as exc:  # one plugin's failure never stops the cycle
                log.warning("collector %r failed: %s", name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                failures.append(_plugin_failure("collector", name, exc))
                continue
            if problems:
                log.warning("collector %r returned values that were dropped: %s", name, "; ".join(problems))
                failures.append(_plugin_failure("collector", name, "dropped " + "; ".join(problems[:5])))
        return metrics, facts, failures

    def _accept(self, reading: Reading, metrics: dict[str, float], facts: dict[str, str]) -> list[str]:
        """Copy a reading into `metrics`/`facts`, checking it the way `Report` would.

        Collector output is checked here, once, so the report can be built without validating it
        again; names already seen are cached, since collectors report the same names every cycle.
        """
        problems = []
        known = self._good_names
        for key, value in reading.metrics.items():
            if key not in known:
                if not isinstance(key, str) or not _NAME_RX.fullmatch(key):
                    problems.append(f"metric name {str(key)[:40]!r} is not allowed")
                    continue
                known.add(key)
            if value.__class__ is not float:
                if not isinstance(value, (int, float)):
                    problems.append(f"{key} is not a number ({type(value).__name__})")
                    continue
                value = float(value)
            if not math.isfinite(value):
                problems.append(f"{key} is {value}")
                continue
            out_of_range = metric_range_error(key, value)
            if out_of_range:
                problems.append(out_of_range)
                continue
            if len(metrics) >= MAX_METRICS and key not in metrics:
                problems.append(f"more than {MAX_METRICS} metrics")
                break
            metrics[key] = value
        for key, text in reading.facts.items():
            if key not in known:
                if not isinstance(key, str) or not _NAME_RX.fullmatch(key):
                    problems.append(f"fact name {str(key)[:40]!r} is not allowed")
                    continue
                known.add(key)
            if not isinstance(text, str):
                text = str(text)
            if len(facts) >= MAX_FACTS and key not in facts:
                problems.append(f"more than {MAX_FACTS} facts")
                break
            facts[key] = text[:MAX_FACT_TEXT]
        return problems

    def evaluate(self, metrics: dict[str, float], extra: list[Finding] | None = None) -> Health:
        """Run every health check on `metrics` and score the findings (plus `extra`)."""
        findings = list(extra or [])
        thresholds = self.settings.health.thresholds
        for name, check in self.health_checks.items():
            try:
                found = check.check(metrics, thresholds)
                bad = [f for f in found if not isinstance(f, Finding)]
                if bad:
                    raise TypeError(f"check() returned {type(bad[0]).__name__}, not Finding")
            except Exception as exc:
                log.warning("health check %r failed: %s", name, exc)
                findings.append(_plugin_failure("health check", name, exc))
                continue
            findings.extend(found)
        return health_mod.score(findings)

    def cycle(self, machine_id: str | None = None, seq: int | None = None) -> tuple[Report, Health]:
        """Collect, build the report, score it: one full cycle.

        The report is built without validating it again: every value in it was checked on the
        way in (`_accept`, `_check_machine_id`), which keeps a cycle close to raw psutil's cost.
        """
        machine_id = self._check_machine_id(machine_id or default_machine_id())
        if seq is not None and not 0 <= seq < 2**63:
            raise ValueError(f"seq must be between 0 and 2**63-1, got {seq}")
        metrics, facts, failures = self.collect()
        report = Report.model_construct(
            machine_id=machine_id,
            hostname=self.hostname,
            os=self.os,
            agent_version=_version(),
            seq=seq,
            collected_at=utcnow(),
            metrics=metrics,
            facts=facts,
            spool_dropped=0,
            collector_failures=[CollectorFailure(collector=f.source[:MAX_NAME],  # the error, not "x failed:"
                                                 error=f.message.split(" failed: ", 1)[-1][:500])
                                for f in failures],
        )
        return report, self.evaluate(metrics, failures)

    def _check_machine_id(self, machine_id: str) -> str:
        if machine_id != self._machine_id_ok:
            if not isinstance(machine_id, str) or not re.fullmatch(MACHINE_ID_PATTERN, machine_id):
                raise ValueError(
                    f"machine id {machine_id[:40]!r} is not allowed: letters, digits and . _ : @ -, "
                    f"starting with a letter or digit, at most 128 characters")
            self._machine_id_ok = machine_id
        return machine_id

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

    def every(self, seconds: float, func: Callable[[], Any], job_id: str, *, serial: bool = False) -> None:
        """Run `func` every `seconds` on the engine's scheduler; its exceptions are logged.

        `serial` jobs share one thread, so they never run at the same time as each other (the
        agent's collection and its spool flush); other jobs run side by side."""
        self._ensure_scheduler().add_job(
            _guarded(func, job_id), "interval", seconds=seconds, id=job_id, replace_existing=True,
            next_run_time=utcnow(), executor="serial" if serial else "default")

    def later(self, seconds: float, func: Callable[[], Any], job_id: str, *, serial: bool = False) -> None:
        """Run `func` once, `seconds` from now, on the engine's scheduler (replacing a pending run
        of the same `job_id`); its exceptions are logged."""
        self._ensure_scheduler().add_job(
            _guarded(func, job_id), "date", run_date=utcnow() + timedelta(seconds=max(0.0, seconds)),
            id=job_id, replace_existing=True, executor="serial" if serial else "default")

    def start(self) -> None:
        scheduler = self._ensure_scheduler()
        if not scheduler.running:
            scheduler.start()

    def stop(self) -> None:
        """Stop the scheduler, waiting for running jobs; pending ones are dropped."""
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            # APScheduler 3 marks itself stopped before it takes the job-store lock: a one-off job
            # its thread is processing at that moment is then "not found" when removed, and the
            # thread dies with JobLookupError. Paused, a round in progress finishes normally, and
            # removing the jobs (under that lock) waits for it.
            scheduler.pause()
            scheduler.remove_all_jobs()
            scheduler.shutdown(wait=True)
        self._scheduler = None

    def _ensure_scheduler(self):
        if self._scheduler is None:
            from apscheduler.executors.pool import ThreadPoolExecutor
            from apscheduler.schedulers.background import BackgroundScheduler

            self._scheduler = BackgroundScheduler(
                timezone="UTC",
                executors={"default": ThreadPoolExecutor(10), "serial": ThreadPoolExecutor(1)},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            )
        return self._scheduler

    # --- lifecycle hooks -----------------------------------------------------------------------

    def startup(self) -> None:
        """Tell plugins the host is starting; a plugin whose hook raises is logged, not fatal."""
        call_each(self.pm, "startup", {"engine": self})

    def shutdown(self) -> None:
        """Tell plugins the host is stopping; every plugin is called even if one raises."""
        call_each(self.pm, "shutdown", {"engine": self})


def _guarded(func: Callable[[], Any], job_id: str) -> Callable[[], None]:
    """A job whose exception is logged (one line for a full disk) instead of lost in APScheduler."""

    def guarded() -> None:
        try:
            func()
        except StorageFull as exc:  # says itself what to do; no traceback every run
            log.error("scheduled job %r failed: %s", job_id, exc)
        except Exception:
            log.exception("scheduled job %r failed", job_id)

    return guarded


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
