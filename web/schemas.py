"""Pydantic models of what the API answers. They generate `/api/openapi.json`, and the tests
validate real responses against them, so the document and the server cannot drift apart."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dashfleet_core.models import Status


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error: a sentence saying what was wrong and what to do."""

    error: str
    fields: list[str] | None = Field(default=None, description="Fields that failed validation (422)")
    last_seq: int | None = Field(default=None, description="409 on a report: the machine's highest stored seq")


class ReportAccepted(_Out):
    stored: bool = Field(description="false when (machine_id, seq) was already stored")
    duplicate: bool | None = None
    machine_id: str
    seq: int | None


class BatchItem(_Out):
    index: int
    ok: bool
    stored: bool | None = None
    error: str | None = None
    fields: list[str] | None = None
    conflict: bool | None = Field(default=None, description="seq already stored with other content")
    last_seq: int | None = Field(default=None, description="with conflict: the machine's highest stored seq")


class BatchAccepted(_Out):
    results: list[BatchItem]
    stored: int
    duplicates: int
    rejected: int = Field(description="items refused for their content (see each item's error)")
    conflicts: int = Field(default=0, description="items whose seq is stored with other content")


class FindingOut(_Out):
    metric: str | None
    value: float | None
    threshold: float | None
    severity: Literal["warn", "critical"]
    message: str
    source: str


class MaintenanceOut(_Out):
    until: str
    reason: str
    by: str


class FleetMachine(_Out):
    machine_id: str
    hostname: str
    os: str
    agent_version: str
    status: Status
    score: int
    top_reason: FindingOut | None
    metrics: dict[str, float]
    last_seen: str
    collected_at: str
    age_seconds: float
    expired: bool = Field(description="last report older than FLEET_TTL_SECONDS")
    maintenance_until: str | None
    spool_dropped: int


class FleetList(_Out):
    generated_at: str
    ttl_seconds: int
    list_hide_days: float = Field(description="machines silent longer than this many days leave the list")
    purge_days: float = Field(description="the same as list_hide_days (its first name, kept for clients)")
    count: int
    machines: list[FleetMachine]
    maintenance_all_until: str | None


class FleetSummary(_Out):
    generated_at: str
    count: int = Field(description="machines in the list of GET /api/fleet")
    ok: int
    warn: int
    critical: int
    silent: int = Field(description="machines whose last report is older than FLEET_TTL_SECONDS, whatever "
                                    "their status was")
    worst: Literal["critical", "warn", "silent", "ok"] | None = Field(
        description="the worst status present, in the order critical, warn, silent, ok; null for an empty fleet")


class MachineDetail(FleetMachine):
    first_seen: str
    last_seq: int | None
    facts: dict[str, str]
    findings: list[FindingOut]
    maintenance: MaintenanceOut | None
    ttl_seconds: int


class BucketOut(_Out):
    start: str
    end: str
    count: int
    min: dict[str, float]
    avg: dict[str, float]
    max: dict[str, float]


class MachineHistory(_Out):
    machine_id: str
    since: str
    until: str
    points: int
    buckets: list[BucketOut]


class AlertOut(_Out):
    """A current finding in the original dashboard's `alerts` shape."""

    metric: str | None = Field(description="null for a finding about no single metric (a failed collector)")
    value: float | None
    threshold: float | None
    severity: Literal["warn", "critical"]
    message: str


class LocalStats(_Out):
    machine_id: str
    hostname: str
    collected_at: str
    cpu: float | None
    ram: float | None
    disk: float | None
    uptime_seconds: float | None
    metrics: dict[str, float]
    facts: dict[str, str]
    alerts: list[AlertOut] = Field(description="the snapshot's current findings (with the default "
                                               "[health.thresholds]: CPU >= 80 %, RAM >= 90 %, disk >= 90 %)")


class LocalStatus(LocalStats):
    score: int
    status: Status
    top_reason: FindingOut | None
    findings: list[FindingOut]


class LocalSample(_Out):
    collected_at: str
    seq: int | None
    cpu: float | None
    ram: float | None
    disk: float | None
    score: int | None
    status: Status | None


class LocalHistory(_Out):
    machine_id: str
    limit: int
    samples: list[LocalSample]


class Healthz(_Out):
    status: Literal["ok"]
    version: str
    storage: str


# --- actions and alerting (their blueprints answer these shapes) -------------------------------


class ActionCatalogueEntry(_Out):
    """One action of `GET /api/actions`."""

    name: str
    description: str
    platforms: list[str]
    changes_machine: bool
    plugin: str
    allowed: bool = Field(description="listed in [actions] allowed (or no list is configured)")
    supported: bool = Field(description="runs on this server's platform")
    params: dict = Field(description="JSON Schema of the action's parameters")


class EventList(_Out):
    events: list[dict] = Field(description="Events, newest first (see the Event schema)")


class MaintenanceWindowOut(BaseModel):
    """A window in force: stored ones also carry `since`, listed ones `machine` (an id or `*`)."""

    until: str
    reason: str
    by: str = Field(description="who acted: the credential (action-token), or config")
    note: str | None = Field(default=None, description="a name the caller gave as `by`")
    since: str | None = None
    machine: str | None = None


class MaintenanceStarted(_Out):
    machine_id: str = Field(description="the machine, or * for the whole fleet")
    maintenance: MaintenanceWindowOut


class MaintenanceEnded(_Out):
    machine_id: str
    ended: bool


class MaintenanceWindows(_Out):
    windows: dict[str, MaintenanceWindowOut] = Field(
        description="by machine id or * (stored windows) and config-<n> ([[alerts.maintenance]])")


# --- organisations and API keys (web/blueprints/orgs.py) ------------------------------------------

Scope = Literal["report", "read", "operate", "admin"]


class OrgOut(_Out):
    id: str = Field(description="the organisation's id: a slug of its name (lower-case letters, digits, dashes)")
    name: str
    created_at: str | None = Field(description="null for the built-in `default` organisation")


class OrgCreated(_Out):
    org: OrgOut
    api_key: str = Field(description="the organisation's first key (scope admin, named admin): shown this once")


class OrgEntry(OrgOut):
    scopes: list[Scope] = Field(description="what the caller may do there")
    role: Literal["viewer", "operator", "admin"] | None = Field(
        description="the caller's role there, for a dashboard login that is a member")
    current: bool = Field(description="the organisation the caller's requests are about")


class OrgList(_Out):
    orgs: list[OrgEntry]


class ApiKeyOut(_Out):
    """An API key as it is listed: never its secret, never its hash."""

    id: str = Field(description="the public id (the 12 hex digits after dfk_ in the key)")
    org: str
    name: str
    scopes: list[Scope]
    created_at: str
    last_used_at: str | None = Field(description="to the minute; null if never used")
    expires_at: str | None


class KeyCreated(_Out):
    key: ApiKeyOut
    secret: str = Field(description="the key (Authorization: Bearer <secret>): shown this once")


class KeyList(_Out):
    keys: list[ApiKeyOut]
