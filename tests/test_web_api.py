"""The web API through Flask's test client, on a real SQLite file: the report contract, the read
endpoints, errors, security headers, /metrics and the OpenAPI document."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest
from flask import Blueprint

from dashfleet_core import hookimpl
from dashfleet_core.fleet import Fleet
from dashfleet_core.models import Health, Report, utcnow
from dashfleet_core.plugins import make_plugin_manager
from dashfleet_web import schemas
from dashfleet_web.app import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
XSS = "<img src=x onerror=alert(1)>"


def report(machine_id="m1", seq=1, **fields):
    doc = {"machine_id": machine_id, "seq": seq, "hostname": f"{machine_id}.lan",
           "metrics": {"cpu.percent": 12.5, "memory.percent": 40.0, "disk.percent": 55.0}}
    doc.update(fields)
    return doc


@pytest.fixture
def rig(settings_factory):
    """A fleet on a fresh SQLite file and its app (jobs not started), with a fixed token."""
    made = []

    def make(overrides=None, extra_plugins=()):
        settings = settings_factory({"server.token": TOKEN, "server.report_self": False, **(overrides or {})})
        pm = make_plugin_manager(settings, extra=list(extra_plugins))
        fleet = Fleet(settings, pm)
        app = create_app(fleet=fleet, start=False)
        made.append(fleet)
        return fleet, app.test_client()

    yield make
    for fleet in made:
        fleet.stop()


@pytest.fixture
def api(rig):
    return rig()


# --- POST /api/fleet/report --------------------------------------------------------------------


def test_single_report_is_stored_once_and_duplicate_is_acknowledged(api):
    fleet, client = api
    r = client.post("/api/fleet/report", json=report(), headers=AUTH)
    assert r.status_code == 201
    assert r.json == {"stored": True, "machine_id": "m1", "seq": 1}
    schemas.ReportAccepted.model_validate(r.json)
    again = client.post("/api/fleet/report", json=report(), headers=AUTH)
    assert again.status_code == 200
    assert again.json["stored"] is False and again.json["duplicate"] is True
    assert len(fleet.storage.history("m1")) == 1


@pytest.mark.parametrize("headers,needle", [({}, "missing token"),
                                            ({"Authorization": "Bearer nope"}, "wrong token")])
def test_report_without_the_right_token_is_refused_401(api, headers, needle):
    fleet, client = api
    r = client.post("/api/fleet/report", json=report(), headers=headers)
    assert r.status_code == 401
    assert needle in r.json["error"]
    assert fleet.storage.machine("m1") is None


def test_token_in_the_body_is_accepted_like_the_seed_agents(api):
    fleet, client = api
    r = client.post("/api/fleet/report", json={**report(), "token": TOKEN})
    assert r.status_code == 201
    assert fleet.storage.machine("m1").hostname == "m1.lan"


def test_bad_json_is_400_with_a_json_error(api):
    _, client = api
    r = client.post("/api/fleet/report", data=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json["error"]


def test_schema_errors_are_422_naming_the_fields(api):
    fleet, client = api
    bad = report(seq=-1, metrics={"cpu.percent": "lots"})
    r = client.post("/api/fleet/report", json=bad, headers=AUTH)
    assert r.status_code == 422
    assert set(r.json["fields"]) == {"seq", "metrics.cpu.percent"}
    assert "metrics.cpu.percent" in r.json["error"]
    assert fleet.storage.machine("m1") is None


def test_unknown_field_and_missing_machine_id_are_named(api):
    _, client = api
    r = client.post("/api/fleet/report", json={"hostname": "x", "colour": "red"}, headers=AUTH)
    assert r.status_code == 422
    assert set(r.json["fields"]) == {"machine_id", "colour"}


def test_body_over_the_limit_is_413(rig):
    fleet, client = rig({"server.max_body_bytes": 2048})
    big = report(facts={f"f{i}": "x" * 200 for i in range(20)})
    r = client.post("/api/fleet/report", json=big, headers=AUTH)
    assert r.status_code == 413
    assert "max_body_bytes" in r.json["error"]
    assert fleet.storage.machine("m1") is None


def test_batch_stores_valid_items_and_names_invalid_ones(api):
    fleet, client = api
    client.post("/api/fleet/report", json=report(seq=1), headers=AUTH)
    batch = [report(seq=1), report(seq=2), report(seq=3, metrics={"cpu.percent": None}), "nope", report(seq=4)]
    r = client.post("/api/fleet/report", json=batch, headers=AUTH)
    assert r.status_code == 200
    schemas.BatchAccepted.model_validate(r.json)
    assert (r.json["stored"], r.json["duplicates"], r.json["rejected"]) == (2, 1, 2)
    results = r.json["results"]
    assert [x["index"] for x in results] == [0, 1, 2, 3, 4]
    assert results[0] == {"index": 0, "ok": True, "stored": False}
    assert results[1] == {"index": 1, "ok": True, "stored": True}
    assert results[2]["ok"] is False and results[2]["fields"] == ["metrics.cpu.percent"]
    assert results[3]["ok"] is False and "JSON object" in results[3]["error"]
    assert sorted(s.seq for s in fleet.storage.history("m1")) == [1, 2, 4]


def _iso(at) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_a_report_from_too_far_in_the_future_is_refused_and_does_not_freeze_its_machine(rig):
    """A machine's row follows its newest collected_at: one report dated years ahead would hide
    every later one. Such a report is refused (422 naming collected_at and the setting); one
    within `max_clock_ahead_seconds` is stored."""
    fleet, client = rig({"server.max_clock_ahead_seconds": 60})
    now = utcnow()
    r = client.post("/api/fleet/report", json=report(seq=1, collected_at="2999-01-01T00:00:00Z"), headers=AUTH)
    assert r.status_code == 422 and r.json["fields"] == ["collected_at"]
    assert "ahead of the server's clock" in r.json["error"] and "max_clock_ahead_seconds" in r.json["error"]
    assert fleet.storage.machine("m1") is None
    ok = client.post("/api/fleet/report", json=report(seq=2, collected_at=_iso(now + timedelta(seconds=30))),
                     headers=AUTH)
    assert ok.status_code == 201
    later = client.post("/api/fleet/report", headers=AUTH,
                        json=report(seq=3, hostname="renamed", collected_at=_iso(now + timedelta(seconds=40))))
    assert later.status_code == 201 and fleet.storage.machine("m1").hostname == "renamed"


def test_a_batch_names_its_reports_from_the_future_and_stores_the_rest(api):
    fleet, client = api
    future = _iso(utcnow() + timedelta(days=1))
    batch = [report(seq=1), report(seq=2, collected_at=future), report(seq=3)]
    r = client.post("/api/fleet/report", json=batch, headers=AUTH)
    assert r.status_code == 200 and (r.json["stored"], r.json["rejected"]) == (2, 1)
    assert r.json["results"][1]["ok"] is False and r.json["results"][1]["fields"] == ["collected_at"]
    assert "ahead of the server's clock" in r.json["results"][1]["error"]
    assert sorted(s.seq for s in fleet.storage.history("m1")) == [1, 3]


def test_empty_batch_is_422(api):
    _, client = api
    r = client.post("/api/fleet/report", json=[], headers=AUTH)
    assert r.status_code == 422 and "empty" in r.json["error"]


def test_server_scores_health_with_its_own_thresholds(rig):
    fleet, client = rig({"health.thresholds": {"cpu.percent": {"warn": 10, "critical": 20}}})
    client.post("/api/fleet/report", json=report(metrics={"cpu.percent": 15.0}), headers=AUTH)
    m = client.get("/api/fleet").json["machines"][0]
    assert m["status"] == "warn" and m["score"] < 100
    assert m["top_reason"]["metric"] == "cpu.percent" and m["top_reason"]["threshold"] == 10


def test_storage_failure_is_503_with_retry_after_and_nothing_acknowledged(api):
    fleet, client = api
    fleet.storage.close()
    broken = fleet.storage

    def fail(*args, **kwargs):
        raise OSError("disk unplugged")

    broken.save_report = fail
    broken.save_reports = fail
    r = client.post("/api/fleet/report", json=report(), headers=AUTH)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    assert "nothing was stored" in r.json["error"]


# --- GET /api/fleet and a machine ----------------------------------------------------------------


def _store_at(fleet, machine_id, seconds_ago, **fields):
    rep = Report.model_validate(report(machine_id, **fields))
    fleet.storage.save_report(rep, fleet.engine.evaluate(rep.metrics),
                              received_at=utcnow() - timedelta(seconds=seconds_ago))


def test_fleet_marks_expired_machines_and_drops_purged_ones(rig):
    fleet, client = rig({"server.ttl_seconds": 600, "server.purge_days": 7})
    _store_at(fleet, "fresh", 5)
    _store_at(fleet, "silent", 601)
    _store_at(fleet, "gone", 8 * 86400)
    doc = client.get("/api/fleet").json
    schemas.FleetList.model_validate(doc)
    by_id = {m["machine_id"]: m for m in doc["machines"]}
    assert set(by_id) == {"fresh", "silent"}
    assert by_id["fresh"]["expired"] is False and by_id["silent"]["expired"] is True
    assert doc["ttl_seconds"] == 600


def test_list_hide_days_hides_silent_machines_and_is_answered_under_both_names(rig):
    fleet, client = rig({"server.list_hide_days": 3})
    _store_at(fleet, "fresh", 5)
    _store_at(fleet, "four-days", 4 * 86400)
    doc = client.get("/api/fleet").json
    schemas.FleetList.model_validate(doc)
    assert [m["machine_id"] for m in doc["machines"]] == ["fresh"]
    assert doc["list_hide_days"] == doc["purge_days"] == 3
    assert fleet.storage.machine("four-days") is not None, "hidden from the list, kept in storage"


def test_fleet_ttl_comes_from_FLEET_TTL_SECONDS(settings_factory):
    settings = settings_factory(env={"FLEET_TTL_SECONDS": "30"})
    assert settings.server.ttl_seconds == 30


def test_fleet_shows_maintenance_windows_from_storage(api):
    fleet, client = api
    _store_at(fleet, "a", 1)
    _store_at(fleet, "b", 1)
    until = (utcnow() + timedelta(hours=2)).isoformat()
    fleet.storage.kv_put("maintenance", "a", {"until": until, "reason": "patching", "by": "ops"})
    fleet.storage.kv_put("maintenance", "old", {"until": (utcnow() - timedelta(hours=1)).isoformat()})
    by_id = {m["machine_id"]: m for m in client.get("/api/fleet").json["machines"]}
    assert by_id["a"]["maintenance_until"] is not None and by_id["b"]["maintenance_until"] is None
    detail = client.get("/api/fleet/a").json
    assert detail["maintenance"]["reason"] == "patching"
    fleet.storage.kv_put("maintenance", "*", {"until": until, "reason": "", "by": ""})
    doc = client.get("/api/fleet").json
    assert all(m["maintenance_until"] for m in doc["machines"]) and doc["maintenance_all_until"]


def test_fleet_shows_maintenance_windows_from_the_config(rig):
    now = utcnow()
    daily = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"  # covers now
    until = (now + timedelta(hours=3)).replace(microsecond=0)
    fleet, client = rig({"alerts.maintenance": [
        {"machine": "b", "until": until.isoformat(), "reason": "disk swap"},
        {"machine": "c", "daily": daily, "reason": "nightly backup"},
        {"machine": "a", "until": (now - timedelta(hours=1)).isoformat()},  # over: not shown
    ]})
    for machine_id in ("a", "b", "c"):
        _store_at(fleet, machine_id, 1)
    by_id = {m["machine_id"]: m for m in client.get("/api/fleet").json["machines"]}
    assert by_id["a"]["maintenance_until"] is None
    assert by_id["b"]["maintenance_until"] == until.isoformat()[:-6] + "Z"
    assert by_id["c"]["maintenance_until"] is not None
    detail = client.get("/api/fleet/c").json
    assert detail["maintenance"]["reason"] == "nightly backup" and detail["maintenance"]["by"] == "config"
    # a stored window ending later than the config one wins for the same machine
    later = (now + timedelta(hours=5)).replace(microsecond=0)
    fleet.storage.kv_put("maintenance", "b", {"until": later.isoformat(), "reason": "extended", "by": "ops"})
    assert client.get("/api/fleet/b").json["maintenance"]["reason"] == "extended"


def test_machine_detail_and_404(api):
    fleet, client = api
    client.post("/api/fleet/report", json=report(facts={"os.name": XSS}, os="Linux"), headers=AUTH)
    r = client.get("/api/fleet/m1")
    assert r.status_code == 200
    schemas.MachineDetail.model_validate(r.json)
    assert r.json["facts"] == {"os.name": XSS} and r.json["metrics"]["cpu.percent"] == 12.5
    missing = client.get("/api/fleet/nobody")
    assert missing.status_code == 404 and "GET /api/fleet" in missing.json["error"]


def test_machine_history_buckets_and_parameters(api):
    fleet, client = api
    now = utcnow()
    for i in range(10):
        rep = Report.model_validate(report(seq=i, collected_at=(now - timedelta(minutes=10 - i)).isoformat(),
                                           metrics={"cpu.percent": float(i * 10)}))
        fleet.ingest([rep])
    r = client.get("/api/fleet/m1/history", query_string={"points": 5, "metrics": "cpu.percent"})
    assert r.status_code == 200
    doc = schemas.MachineHistory.model_validate(r.json)
    assert doc.points == 5 and 1 <= len(doc.buckets) <= 5
    assert sum(b.count for b in doc.buckets) == 10
    assert max(b.max["cpu.percent"] for b in doc.buckets) == 90.0
    since = (now - timedelta(minutes=5, seconds=30)).isoformat()
    part = client.get("/api/fleet/m1/history", query_string={"since": since}).json
    assert sum(b["count"] for b in part["buckets"]) == 5
    assert client.get("/api/fleet/m1/history?points=99999").json["points"] == 1000
    bad = client.get("/api/fleet/m1/history?since=yesterday")
    assert bad.status_code == 400 and "ISO-8601" in bad.json["error"]
    backwards = client.get("/api/fleet/m1/history", query_string={"since": now.isoformat(),
                                                                  "until": (now - timedelta(hours=1)).isoformat()})
    assert backwards.status_code == 400
    assert client.get("/api/fleet/nobody/history").status_code == 404


# --- the seed's local endpoints ------------------------------------------------------------------


def test_stats_and_status_describe_this_machine(api):
    fleet, client = api
    stats = client.get("/api/stats").json
    schemas.LocalStats.model_validate(stats)
    assert stats["machine_id"] == fleet.self_machine_id and 0 <= stats["cpu"] <= 100
    status = client.get("/api/status").json
    schemas.LocalStatus.model_validate(status)
    assert status["status"] in ("ok", "warn", "critical") and 0 <= status["score"] <= 100


class _FixedFigures:
    """A collector whose CPU and RAM figures the test chooses (the real ones are disabled)."""

    name = "fixed_figures"
    metrics = []

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def collect(self):
        from dashfleet_core import Reading

        return Reading(metrics=dict(self.values))


class _FixedFiguresPlugin:
    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    @hookimpl
    def register_collectors(self, register):
        register(_FixedFigures(self.values))


@pytest.mark.parametrize("cpu,ram,expected", [
    (80.0, 89.9, [("cpu.percent", 80.0, 80.0, "warn")]),
    (95.0, 90.0, [("cpu.percent", 95.0, 95.0, "critical"), ("memory.percent", 90.0, 90.0, "warn")]),
    (79.9, 10.0, []),
])
def test_stats_carry_the_original_dashboards_alerts_at_the_default_levels(rig, cpu, ram, expected):
    """A client of the original reads `alerts` from /api/stats: CPU >= 80 % and RAM >= 90 % by default."""
    fleet, client = rig({"plugins.disabled": ["cpu", "memory"]},
                        extra_plugins=[("fixed_figures", _FixedFiguresPlugin({"cpu.percent": cpu, "memory.percent": ram}))])
    stats = client.get("/api/stats").json
    schemas.LocalStats.model_validate(stats)
    assert (stats["cpu"], stats["ram"]) == (cpu, ram)
    alerts = [a for a in stats["alerts"] if a["metric"] in ("cpu.percent", "memory.percent")]
    assert [(a["metric"], a["value"], a["threshold"], a["severity"]) for a in alerts] == expected
    assert all(set(a) == {"metric", "value", "threshold", "severity", "message"} for a in stats["alerts"])
    assert all(a["metric"] in a["message"] for a in alerts)
    status = client.get("/api/status").json
    assert [f["message"] for f in status["findings"]] == [a["message"] for a in status["alerts"]]


def test_history_limit_is_clamped_to_500(api):
    fleet, client = api
    items = []
    for i in range(510):
        rep = Report(machine_id=fleet.self_machine_id, seq=i, metrics={"cpu.percent": 1.0})
        items.append((rep, Health(score=100, status="ok")))
    fleet.storage.save_reports(items)
    doc = client.get("/api/history?limit=100000").json
    schemas.LocalHistory.model_validate(doc)
    assert doc["limit"] == 500 and len(doc["samples"]) == 500
    assert [s["seq"] for s in doc["samples"]][-1] == 509  # oldest first, newest last
    assert len(client.get("/api/history?limit=3").json["samples"]) == 3
    assert len(client.get("/api/history").json["samples"]) == 300
    bad = client.get("/api/history?limit=abc")
    assert bad.status_code == 400 and "whole number" in bad.json["error"]


def test_self_report_puts_this_machine_in_the_fleet(api):
    fleet, client = api
    assert fleet.report_self() is True
    ids = [m["machine_id"] for m in client.get("/api/fleet").json["machines"]]
    assert ids == [fleet.self_machine_id]


# --- ops ------------------------------------------------------------------------------------------


def test_healthz(api):
    _, client = api
    r = client.get("/healthz")
    assert r.status_code == 200
    schemas.Healthz.model_validate(r.json)


def test_metrics_expose_the_fleet_in_prometheus_format(rig):
    fleet, client = rig({"actions.token": "act-token-0123456789"})
    client.post("/api/fleet/report", json=report(hostname=XSS, metrics={"cpu.percent": 99.0}), headers=AUTH)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.get_data(as_text=True)
    assert 'dashfleet_machines{status="critical"} 1.0' in text
    assert 'dashfleet_machine_cpu_percent{hostname="<img src=x onerror=alert(1)>",machine_id="m1"} 99.0' in text
    # the process's counters count every organisation's reports: for the server operator only
    assert "dashfleet_reports_received" not in text
    operator = {"Authorization": "Bearer act-token-0123456789"}
    assert 'dashfleet_reports_received_total{result="stored"} 1.0' in client.get("/metrics", headers=operator).text
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    assert om.get_data(as_text=True).rstrip().endswith("# EOF")


def test_openapi_document_is_3_1_and_describes_every_api_path(api):
    _, client = api
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    for path in ("/api/fleet/report", "/api/fleet", "/api/fleet/{machine_id}", "/api/fleet/{machine_id}/history",
                 "/api/stats", "/api/status", "/api/history", "/healthz", "/metrics"):
        assert path in doc["paths"], path
    assert "Report" in doc["components"]["schemas"]
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs <= set(doc["components"]["schemas"])


def test_openapi_document_describes_every_api_route_and_method(api):
    """Every rule of the app's url_map under /api/ (each method but HEAD/OPTIONS) is in the document,
    so a new endpoint cannot be added without describing it."""
    import re

    from flask import current_app

    _, client = api
    doc = client.get("/api/openapi.json").json
    with client.application.app_context():
        rules = list(current_app.url_map.iter_rules())
    missing = []
    for rule in rules:
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method.lower() not in doc["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing, f"routes missing from web/openapi.py: {missing}"
    assert len([r for r in rules if r.rule.startswith("/api/")]) >= 15


def test_openapi_alerting_and_action_schemas_match_real_responses(rig):
    fleet, client = rig({"actions.token": "act-token-0123456789"})
    auth = {"Authorization": "Bearer act-token-0123456789"}
    client.post("/api/fleet/report", json=report("m1"), headers=AUTH)
    started = client.post("/api/fleet/m1/maintenance", json={"minutes": 30, "reason": "patching"}, headers=auth)
    assert started.status_code == 201
    schemas.MaintenanceStarted.model_validate(started.json)
    schemas.MaintenanceWindows.model_validate(client.get("/api/maintenance").json)
    schemas.EventList.model_validate(client.get("/api/fleet/m1/events").json)
    for entry in client.get("/api/actions", headers=auth).json:
        schemas.ActionCatalogueEntry.model_validate(entry)
    ended = client.delete("/api/fleet/m1/maintenance", headers=auth)
    assert ended.status_code == 200
    schemas.MaintenanceEnded.model_validate(ended.json)
    doc = client.get("/api/openapi.json").json
    assert doc["paths"]["/api/action"]["post"]["security"] == [{"actionToken": []}, {"session": []}]
    assert "Retry-After" in doc["paths"]["/api/action"]["post"]["responses"]["429"]["headers"]
    assert {"ActionResult", "AuditEntry", "Event"} <= set(doc["components"]["schemas"])


def test_security_headers_on_pages_and_api(api):
    _, client = api
    for path in ("/", "/fleet", "/api/fleet"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_script_and_load_no_external_resource(api):
    fleet, client = api
    client.post("/api/fleet/report", json=report(), headers=AUTH)
    for path in ("/", "/history", "/fleet", "/fleet/m1"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "onclick" not in html and "style=" not in html
        assert "http://" not in html and "https://" not in html
    assert client.get("/fleet/nobody").status_code == 404


def test_unknown_api_path_is_a_json_404(api):
    _, client = api
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and "openapi" in r.json["error"]


# --- token, hooks, jobs --------------------------------------------------------------------------


def test_token_is_generated_once_with_owner_only_permissions(settings_factory, tmp_path):
    from dashfleet_web.token_file import resolve_fleet_token, token_path

    settings = settings_factory()
    assert settings.server.token is None
    first = resolve_fleet_token(settings)
    path = token_path(settings)
    assert path.read_text().strip() == first and len(first) >= 32
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_fleet_token(settings) == first
    assert resolve_fleet_token(settings_factory(env={"FLEET_TOKEN": "from-env"})) == "from-env"


def test_generated_token_is_required(settings_factory):
    settings = settings_factory({"server.report_self": False})
    fleet = Fleet(settings)
    try:
        client = create_app(fleet=fleet, start=False).test_client()
        assert client.post("/api/fleet/report", json=report()).status_code == 401
        from dashfleet_web.token_file import token_path

        token = token_path(settings).read_text().strip()
        r = client.post("/api/fleet/report", json=report(), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201
    finally:
        fleet.stop()


class _Probe:
    def __init__(self):
        self.stored = []

    @hookimpl
    def report_stored(self, report, health):
        self.stored.append((report.machine_id, report.seq, health.status))

    @hookimpl
    def register_routes(self, app):
        bp = Blueprint("probe", __name__)
        bp.add_url_rule("/probe", "probe", lambda: {"probe": True})
        app.register_blueprint(bp)


def test_hook_report_stored(rig):
    probe = _Probe()
    fleet, client = rig(extra_plugins=[("probe", probe)])
    client.post("/api/fleet/report", json=report(seq=1, metrics={"cpu.percent": 99.0}), headers=AUTH)
    client.post("/api/fleet/report", json=[report(seq=1), report(seq=2)], headers=AUTH)
    assert probe.stored == [("m1", 1, "critical"), ("m1", 2, "ok")]


def test_hook_register_routes(rig):
    fleet, client = rig(extra_plugins=[("probe", _Probe())])
    assert client.get("/probe").json == {"probe": True}


def test_failing_report_stored_plugin_does_not_fail_the_request(rig):
    class Broken:
        @hookimpl
        def report_stored(self, report, health):
            raise RuntimeError("plugin bug")

    fleet, client = rig(extra_plugins=[("broken", Broken())])
    assert client.post("/api/fleet/report", json=report(), headers=AUTH).status_code == 201


def test_scheduled_job_runs_in_one_of_two_fleets_on_the_same_storage(settings_factory):
    import threading

    settings = settings_factory({"server.report_self": False})
    ran = {"a": threading.Event(), "b": threading.Event()}
    runs = []
    fleets = {name: Fleet(settings) for name in ran}
    try:
        for name, fleet in fleets.items():
            fleet.schedule("probe", 0.1, lambda name=name: (runs.append(name), ran[name].set()))
            fleet.start()
        assert ran["a"].wait(10) or ran["b"].wait(10)
        while len(runs) < 5:
            threading.Event().wait(0.05)
    finally:
        for fleet in fleets.values():
            fleet.stop()
    assert len(set(runs)) == 1, runs


def test_retention_purges_old_samples(rig):
    fleet, client = rig({"storage.retention_days": 1})
    old = Report.model_validate(report(seq=1, collected_at=(utcnow() - timedelta(days=3)).isoformat()))
    new = Report.model_validate(report(seq=2))
    fleet.ingest([old, new])
    assert fleet.purge_old() >= 1
    assert [s.seq for s in fleet.storage.history("m1")] == [2]


def test_create_app_accepts_a_dict_of_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app({"storage.url": f"sqlite:///{tmp_path}/x.db", "server.data_dir": str(tmp_path),
                      "server.token": TOKEN}, start=False)
    try:
        assert app.extensions["dashfleet"].settings.server.token == TOKEN
        assert json.loads(app.test_client().get("/healthz").data)["status"] == "ok"
    finally:
        app.extensions["dashfleet"].stop()


def test_wrong_method_is_a_json_405_with_allow(api):
    _, client = api
    r = client.delete("/api/fleet")
    assert r.status_code == 405 and "error" in r.json
    assert "GET" in r.headers["Allow"]


def test_openapi_states_the_metric_name_rule(api):
    _, client = api
    report_schema = client.get("/api/openapi.json").json["components"]["schemas"]["Report"]
    assert report_schema["properties"]["metrics"]["propertyNames"]["pattern"].startswith("^[A-Za-z0-9_]")
    assert report_schema["properties"]["metrics"]["maxProperties"] == 512
