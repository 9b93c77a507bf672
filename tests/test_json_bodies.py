"""JSON bodies on every endpoint (issue 12, items 4 and 11): deep nesting is a 400 before any
parser recurses, huge numbers and parse errors say what to do without Python's internals, and an
action attempt that fails in any way leaves exactly one audit row. Real app, real SQLite file."""

from __future__ import annotations

import json
import logging

import pytest
from flask import jsonify, request

from dashfleet_core.plugins import make_plugin_manager
from dashfleet_core.fleet import Fleet
from dashfleet_web.app import create_app
from dashfleet_web.jsonbody import MAX_DEPTH, too_deep

FLEET_TOKEN = "fleet-token-for-json-tests"
ACTION_TOKEN = "action-token-for-json-tests"
DEEP = b"[" * 100_000 + b"]" * 100_000
REPORT = {"machine_id": "m1", "seq": 1, "hostname": "m1", "metrics": {"cpu.percent": 1.0}}


@pytest.fixture
def app(settings_factory):
    settings = settings_factory({"server.token": FLEET_TOKEN, "actions.token": ACTION_TOKEN,
                                 "server.report_self": False})
    fleet = Fleet(settings, make_plugin_manager(settings))
    app = create_app(fleet=fleet, start=False)
    yield app
    fleet.stop()


def bearer(token):
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def deep_object(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@pytest.mark.parametrize("method, path, token", [
    ("post", "/api/fleet/report", FLEET_TOKEN),
    ("post", "/api/fleet/report", None),  # the seed's agents: token in the body, so parsed first
    ("post", "/api/action", ACTION_TOKEN),
    ("post", "/api/fleet/m1/maintenance", ACTION_TOKEN),
    ("post", "/api/maintenance", ACTION_TOKEN),
    ("delete", "/api/fleet/m1/maintenance", ACTION_TOKEN),
])
def test_deep_nesting_is_a_400_on_every_json_endpoint(app, caplog, method, path, token):
    caplog.set_level(logging.ERROR)
    client = app.test_client()
    headers = bearer(token) if token else {"Content-Type": "application/json"}
    answer = getattr(client, method)(path, data=DEEP, headers=headers)
    assert answer.status_code == 400, answer.get_json()
    assert f"more than {MAX_DEPTH} levels deep" in answer.get_json()["error"]
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"


def test_request_get_json_of_any_route_refuses_deep_nesting(app):
    @app.post("/plugin-echo")
    def plugin_echo():  # what a plugin's route (register_routes) does
        return jsonify(request.get_json())

    client = app.test_client()
    assert client.post("/plugin-echo", json={"a": [1, {"b": 2}]}).get_json() == {"a": [1, {"b": 2}]}
    answer = client.post("/plugin-echo", data=deep_object(MAX_DEPTH + 1), content_type="application/json")
    assert answer.status_code == 400 and "levels deep" in answer.get_json()["error"]


def test_depth_limit_counts_structure_not_brackets_inside_strings():
    inside = json.dumps({"note": "[" * 10_000, "facts": {"x": "{" * 10_000}}).encode()
    assert not too_deep(inside)
    assert not too_deep(deep_object(MAX_DEPTH))
    assert too_deep(deep_object(MAX_DEPTH + 1))
    assert too_deep(b'["\\"", ' + b"[" * 70 + b"]" * 70 + b"]")  # an escaped quote does not hide them
    assert not too_deep(b"[" + b"[1]," * 50_000 + b"[]]")        # wide is fine


def test_a_deep_action_body_leaves_one_audit_row(app):
    client = app.test_client()
    answer = client.post("/api/action", data=DEEP, headers=bearer(ACTION_TOKEN))
    assert answer.status_code == 400 and "levels deep" in answer.get_json()["error"]
    rows = client.get("/api/audit", headers=bearer(ACTION_TOKEN)).get_json()
    assert len(rows) == 1 and rows[0]["outcome"] == "refused" and rows[0]["details"]["status"] == 400


@pytest.mark.parametrize("path, token, body", [
    ("/api/fleet/report", FLEET_TOKEN, b'{"machine_id": "m1", "seq": ' + b"9" * 5000 + b"}"),
    ("/api/action", ACTION_TOKEN, b'{"action": "flush_dns", "params": {"n": ' + b"9" * 5000 + b"}}"),
    ("/api/maintenance", ACTION_TOKEN, b'{"minutes": ' + b"9" * 5000 + b"}"),
])
def test_a_5000_digit_number_is_explained_without_python_internals(app, path, token, body):
    answer = app.test_client().post(path, data=body, headers=bearer(token))
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert "a number has more than 4300 digits" in error
    assert "sys.set_int_max_str_digits" not in error and "int_max_str_digits" not in error


def test_invalid_json_says_where(app):
    answer = app.test_client().post("/api/fleet/report", data=b'{"machine_id": }', headers=bearer(FLEET_TOKEN))
    assert answer.status_code == 400
    assert "not valid JSON (line 1, column 16)" in answer.get_json()["error"]
