"""The data that crosses a boundary (agent -> server, storage, API, plugins), as pydantic models.

Reports come from machines we do not control: every field is bounded so that a hostile or broken
agent cannot make the server store megabytes or NaNs.
"""

from __future__ import annotations

import hashlib
import json
import re

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

Status = Literal["ok", "warn", "critical"]
Severity = Literal["warn", "critical"]
# The one status ranking, mildest first: scoring, alert tracking, messages, the fleet view and the
# metrics all compare statuses (and finding severities) through it.
STATUSES: tuple[Status, ...] = ("ok", "warn", "critical")  # by rank: STATUSES[n] has rank n
STATUS_ORDER: dict[str, int] = {status: rank for rank, status in enumerate(STATUSES)}
SILENT = "silent"  # no report within the TTL: alerting ranks it above critical (nothing is known)


def status_rank(status: str | None) -> int:
    """How bad a status or severity is, for comparing and sorting: ok 0 < warn 1 < critical 2 <
    silent 3. None (no status yet) ranks as ok."""
    if status is None:
        return 0
    if status == SILENT:
        return len(STATUS_ORDER)
    try:
        return STATUS_ORDER[status]
    except KeyError:
        raise ValueError(f"unknown status {status!r}: expected one of "
                         f"{', '.join((*STATUS_ORDER, SILENT))}") from None


DEFAULT_ORG = "default"

MAX_METRICS = 512
MAX_FACTS = 128
MAX_NAME = 128
MAX_FACT_TEXT = 1024
MACHINE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
METRIC_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$"
METRIC_LIMIT = 1e15  # a metric beyond this is a broken or hostile agent, not a measurement
PERCENT_METRICS = re.compile(r"^(cpu|memory|swap|disk|battery)\.percent$|^cpu\.core[0-9]+\.percent$|^disk\..+\.percent$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class MetricInfo(BaseModel):
    """What a collector measures: Glances-style metric metadata, shown by `dashfleet plugins`."""

    model_config = ConfigDict(frozen=True)

    name: str
    unit: str = ""
    description: str = ""


class Finding(BaseModel):
    """One reason a machine is not perfectly healthy."""

    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    severity: Severity
    message: str
    source: str = ""


class Health(BaseModel):
    """A machine's health at one moment: 0-100, a status and the reasons."""

    score: int = Field(ge=0, le=100)
    status: Status
    findings: list[Finding] = Field(default_factory=list)


MAX_COLLECTOR_FAILURES = 32


class CollectorFailure(BaseModel):
    """A collector that failed on the agent, carried in its report so the server's score shows it."""

    model_config = ConfigDict(extra="forbid")

    collector: str = Field(max_length=MAX_NAME)
    error: str = Field(max_length=500)


class Report(BaseModel):
    """What an agent sends for one collection cycle. `(machine_id, seq)` makes delivery idempotent."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=4096)

    machine_id: str = Field(pattern=MACHINE_ID_PATTERN)
    hostname: str = Field(default="", max_length=255)
    os: str = Field(default="", max_length=255)
    agent_version: str = Field(default="", max_length=64)
    seq: StrictInt | None = Field(default=None, ge=0, le=2**63 - 1)
    collected_at: datetime = Field(default_factory=utcnow)
    metrics: dict[str, StrictFloat] = Field(default_factory=dict)
    facts: dict[str, str] = Field(default_factory=dict)
    spool_dropped: StrictInt = Field(default=0, ge=0, le=2**63 - 1)
    collector_failures: list[CollectorFailure] = Field(
        default_factory=list, max_length=MAX_COLLECTOR_FAILURES,
        description="collectors that failed on the agent; sent only to a server that advertises "
                    "`collector_failures` in its X-DashFleet-Accepts answer header")

    def failure_findings(self) -> list["Finding"]:
        """The agent's collector failures as the server scores them: one warning each."""
        return [Finding(severity="warn", message=f"collector {f.collector!r} failed on the agent: {f.error}",
                        source=f.collector) for f in self.collector_failures]

    @field_validator("collected_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        try:
            return as_utc(value)
        except OverflowError:  # year 1 at +00:30 is before year 1 in UTC
            raise ValueError("the time is outside what a date can hold in UTC") from None

    @field_validator("metrics")
    @classmethod
    def _metrics_bounded(cls, value: dict[str, float]) -> dict[str, float]:
        if len(value) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics per report, got {len(value)}")
        _check_names(value)
        for name, number in value.items():
            problem = metric_range_error(name, number)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("facts")
    @classmethod
    def _facts_bounded(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_FACTS:
            raise ValueError(f"at most {MAX_FACTS} facts per report, got {len(value)}")
        _check_names(value)
        for key, text in value.items():
            if len(text) > MAX_FACT_TEXT:
                raise ValueError(f"fact {key!r} is longer than {MAX_FACT_TEXT} characters")
        return value


_NAME_RX = re.compile(METRIC_NAME_PATTERN)


def metric_range_error(name: str, value: float) -> str | None:
    """Why a metric's value cannot be true, or None: percentages lie in 0..100, everything else
    within +-1e15 (a value like `processes.top_cpu_percent` may pass 100 on several cores).
    Cheap for the common case: the name is looked at only for a value outside 0..100."""
    if not -METRIC_LIMIT <= value <= METRIC_LIMIT:
        return f"metric {name[:64]!r}: {value:g} is outside -1e15..1e15"
    if (value < 0.0 or value > 100.0) and name.endswith(".percent") and PERCENT_METRICS.match(name):
        return f"metric {name[:64]!r} is a percentage: {value:g} is outside 0..100"
    return None


def _check_names(mapping: dict[str, Any], rx: re.Pattern[str] = _NAME_RX) -> None:
    for key in mapping:
        if not rx.match(key):
            raise ValueError(
                f"name {key[:40]!r} is not allowed: use letters, digits and . _ : / - "
                f"(at most {MAX_NAME} characters)"
            )


def report_digest(report: Report) -> str:
    """A digest of a report's whole content: how a report without `seq` (curl, the seed's agents)
    sent twice is recognised as the same report."""
    canonical = json.dumps(report.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class StatusDocument(BaseModel):
    """One snapshot with its health: what `dashfleet status --json` prints."""

    machine_id: str
    hostname: str
    collected_at: datetime
    metrics: dict[str, float]
    facts: dict[str, str]
    health: Health


class MachineState(BaseModel):
    """The latest known state of one machine, as storage keeps it for the fleet view."""

    org: str = DEFAULT_ORG
    machine_id: str
    hostname: str = ""
    os: str = ""
    agent_version: str = ""
    last_seq: int | None = None
    first_seen: datetime
    last_seen: datetime
    collected_at: datetime
    metrics: dict[str, float] = Field(default_factory=dict)
    facts: dict[str, str] = Field(default_factory=dict)
    health: Health
    spool_dropped: int = 0


class Sample(BaseModel):
    """One stored report in a machine's history."""

    machine_id: str
    seq: int | None = None
    collected_at: datetime
    received_at: datetime | None = None
    metrics: dict[str, float]
    score: int | None = None
    status: Status | None = None


class Bucket(BaseModel):
    """One point of a downsampled chart: min/avg/max of each metric inside [start, end)."""

    start: datetime
    end: datetime
    count: int
    min: dict[str, float]
    avg: dict[str, float]
    max: dict[str, float]


EventKind = Literal[
    "status_changed", "silent", "back", "maintenance_started", "maintenance_ended", "action",
    "seq_conflict", "machine_key_reset",
]


class Event(BaseModel):
    """Something that happened to a machine and is worth keeping (and maybe telling people)."""

    id: int | None = None
    org: str = DEFAULT_ORG
    machine_id: str
    kind: EventKind
    at: datetime = Field(default_factory=utcnow)
    previous: Status | None = None
    status: Status | None = None
    score: int | None = None
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class AuditEntry(BaseModel):
    """One attempt at something privileged (an action, a refused call), kept for accountability."""

    id: int | None = None
    org: str = DEFAULT_ORG
    at: datetime = Field(default_factory=utcnow)
    actor: str
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    outcome: str
    details: dict[str, Any] = Field(default_factory=dict)


class ActionResult(BaseModel):
    """What an action did (or, in a dry run, would do)."""

    action: str
    ok: bool
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    duration_seconds: float = 0.0
    dry_run: bool = False


class Notification(BaseModel):
    """A message for people, built from one or more events (a digest has several)."""

    title: str
    text: str
    events: list[Event] = Field(default_factory=list)
    link: str | None = None
    test: bool = False
