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
    huge = client.post("/plugin-echo", data=b"[" + b"7" * 5000 + b"]", content_type="application/json")
    assert huge.status_code == 400 and "more than 4300 digits" in huge.get_json()["error"]
    assert "sys.set_int_max_str_digits" not in huge.get_json()["error"]


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


# --- echoes of client input, chunked bodies, internals (item 11) ----------------------------------


def test_a_huge_metric_name_is_not_echoed_whole(app):
    name = "m" * 900_000
    body = {**REPORT, "metrics": {name: 1.0, **{f"{'n' * 2000}{i}": 1.0 for i in range(40)}}}
    answer = app.test_client().post("/api/fleet/report", json=body, headers=bearer(FLEET_TOKEN))
    assert answer.status_code == 422
    assert len(answer.data) < 4000, f"the answer is {len(answer.data)} bytes"
    doc = answer.get_json()
    assert doc["fields"] and all(len(f) <= 64 for f in doc["fields"]) and len(doc["fields"]) <= 20
    assert doc["fields"][0].startswith("metrics.mmm") and doc["fields"][0].endswith("…")


def test_action_errors_clip_unknown_names(app):
    client = app.test_client()
    long = "x" * 100_000
    for body in ({"action": long}, {"action": "flush_dns", "params": {long: 1}}, {long: 1, "action": "flush_dns"}):
        answer = client.post("/api/action", json=body, headers=bearer(ACTION_TOKEN))
        assert answer.status_code in (400, 422) and len(answer.data) < 2000, body.keys()
        assert "xxx…" in answer.get_json()["error"]


def test_storage_errors_do_not_name_exception_classes(app):
    fleet = app.extensions["dashfleet"]
    fleet.storage.close()  # a closed SQLite store: every query raises
    client = app.test_client()
    for path in ("/healthz",):
        answer = client.get(path)
        assert answer.status_code == 503 and "Error" not in answer.get_json()["error"]
    answer = client.post("/api/fleet/report", json={**REPORT, "seq": 1}, headers=bearer(FLEET_TOKEN))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "Error" not in answer.get_json()["error"] and "retry in 5 s" in answer.get_json()["error"]


@pytest.fixture
def served(app):
    """The app on a real HTTP server on 127.0.0.1 (Werkzeug's, which passes chunked bodies on)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _chunked_post(port: int, path: str, body: bytes, token: str) -> tuple[int, dict]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    conn.request("POST", path, body=chunks, encode_chunked=True,
                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                          "Transfer-Encoding": "chunked"})
    response = conn.getresponse()
    doc = json.loads(response.read())
    conn.close()
    return response.status, doc


def test_a_chunked_body_over_the_limit_is_413_not_invalid_json(app, served):
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = json.dumps([{**REPORT, "seq": n, "facts": {"pad": "p" * 1000}} for n in range(limit // 1000 + 10)]).encode()
    assert len(big) > limit
    status, doc = _chunked_post(served, "/api/fleet/report", big, FLEET_TOKEN)
    assert status == 413 and "max_body_bytes" in doc["error"], doc
    status, doc = _chunked_post(served, "/api/action", b'{"action": "flush_dns", "pad": "' + b"p" * limit + b'"}',
                                ACTION_TOKEN)
    assert status == 413, doc
    small = json.dumps({**REPORT, "seq": 1}).encode()
    assert _chunked_post(served, "/api/fleet/report", small, FLEET_TOKEN)[0] == 201, "a small chunked body is fine"
