"""Slow clients against the documented production commands (issue 12, item 6): `dashfleet web` as the
systemd unit runs it, and gunicorn behind the shipped nginx config. Connections trickling their
headers or body one byte at a time must not stop `/healthz` or a report from being answered; a
request that does not arrive whole in time is answered 408 and its connection closed."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO, dashfleet_cmd, free_port

sys.path.insert(0, str(REPO / "bench"))
from slow_clients import SlowClients, nginx_binary, start_nginx  # noqa: E402  (the bench's attack)

UNIT = REPO / "deploy" / "systemd" / "dashfleet-server.service"
TOKEN = "slow-test"
BIN = Path(sys.executable).parent


def _unit_command() -> list[str]:
    """The server unit's ExecStart, with its program taken from this interpreter's install."""
    lines = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    argv = shlex.split(lines[0].removeprefix("ExecStart="))
    assert Path(argv[0]).name == "dashfleet", argv
    return dashfleet_cmd() + argv[1:]


def _config(folder: Path, **server) -> Path:
    lines = ["[storage]", f'url = "sqlite:///{folder}/dashfleet.db"', "", "[server]", f'data_dir = "{folder}"',
             "report_self = false"]
    lines += [f"{key} = {value}" for key, value in server.items()]
    path = folder / "dashfleet.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLEET_TOKEN", "HOST", "PORT", "DASHFLEET_STORAGE", "DASHFLEET_CONFIG")}
    env.update(extra)
    return env


def _wait_http(url: str, proc: subprocess.Popen, verify: str | bool = True) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"server exited with {proc.returncode}: {out}\n{err}")
        try:
            if requests.get(url, timeout=1, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within 30 s")


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def _start_unit_command(tmp_path: Path, procs: list, **server) -> tuple[subprocess.Popen, int]:
    """`dashfleet web` with its settings where the unit puts them: HOST, PORT, FLEET_TOKEN and
    DASHFLEET_CONFIG in the environment."""
    port = free_port()
    env = _env(HOST="127.0.0.1", PORT=str(port), FLEET_TOKEN=TOKEN,
               DASHFLEET_CONFIG=str(_config(tmp_path, **server)))
    proc = subprocess.Popen(_unit_command(), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, port


def _healthz_and_a_report(base: str, seq: int, verify: str | bool = True) -> requests.Response:
    """Both within the 5 s client timeout, each on a new connection; returns the /healthz answer."""
    health = requests.get(f"{base}/healthz", timeout=5, verify=verify)
    assert health.status_code == 200
    r = requests.post(f"{base}/api/fleet/report", timeout=5, verify=verify,
                      json={"machine_id": "pc-1", "seq": seq, "metrics": {"cpu.percent": 5.0}},
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201, r.text
    return health


def test_the_server_unit_runs_dashfleet_web_not_a_development_server():
    assert _unit_command()[-1:] == ["web"]


def test_dashfleet_web_answers_while_50_slow_body_and_50_slow_header_connections_are_open_and_stops_on_sigterm(tmp_path, procs):
    proc, port = _start_unit_command(tmp_path, procs)
    base = f"http://127.0.0.1:{port}"
    with SlowClients(port, 50, "body", every=2.0) as bodies, SlowClients(port, 50, "header", every=2.0) as heads:
        time.sleep(2.5)  # each slow connection has trickled a byte since it opened
        health = _healthz_and_a_report(base, seq=1)
        _healthz_and_a_report(base, seq=2)
        assert "werkzeug" not in health.headers.get("Server", "").lower()
        assert "Server" not in health.headers  # nothing to fingerprint
        assert len(bodies.socks) == 50 and len(heads.socks) == 50  # none was refused or dropped
        proc.send_signal(signal.SIGTERM)  # with all of them still open
        assert proc.wait(30) == 0
    assert "stopped" in proc.stdout.read()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


@pytest.mark.parametrize("first", [
    b"POST /api/fleet/report HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
], ids=["slow-body", "slow-header"])
def test_a_request_that_does_not_arrive_whole_within_request_timeout_is_answered_408_and_closed(tmp_path, procs, first):
    proc, port = _start_unit_command(tmp_path, procs, request_timeout_seconds=1)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(first)
        sock.settimeout(0.3)
        answer, sent = b"", 0
        while not answer and sent < 200:  # one byte every 0.3 s: it never goes idle
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"a")
                sent += 1
        sock.settimeout(30)
        answer += _read_all(sock)
    assert answer.split(b"\r\n", 1)[0].endswith(b" 408 Request Timeout"), answer[:200]
    assert b"request_timeout_seconds" in answer
    _healthz_and_a_report(f"http://127.0.0.1:{port}", seq=1)  # the server carries on


def test_slow_connections_filling_every_slot_give_them_back_at_their_deadline(tmp_path, procs):
    """More slow clients than `connection_limit`: the server stops accepting, but each slow request
    is answered 408 at its deadline, so the slots come back and /healthz gets its turn."""
    proc, port = _start_unit_command(tmp_path, procs, connection_limit=20, request_timeout_seconds=1)
    with SlowClients(port, 30, "body", every=0.5) as slow:
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert health.status_code == 200
        waited = time.monotonic() + 30
        while slow.closed == 0 and time.monotonic() < waited:  # a closed socket fails on a later send
            time.sleep(0.2)
        assert slow.closed > 0  # the server closed slow ones to make room


def test_the_request_deadline_is_per_request_so_a_kept_alive_connection_is_not_cut(tmp_path, procs):
    import http.client

    proc, port = _start_unit_command(tmp_path, procs, request_timeout_seconds=1, idle_timeout_seconds=60)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        time.sleep(2.5)  # longer than the request deadline, idle in between
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        second.read()
        assert conn.sock is sock  # the same connection served both
    finally:
        conn.close()
    assert first.status == second.status == 200


def test_bodies_over_the_limit_get_the_apps_json_413_and_far_bigger_ones_are_refused_unread(tmp_path, procs):
    proc, port = _start_unit_command(tmp_path, procs, max_body_bytes=1000)
    base = f"http://127.0.0.1:{port}"
    r = requests.post(f"{base}/api/fleet/report", data=b"[" + b" " * 1200 + b"]", timeout=5,
                      headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/fleet/report HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        answer = _read_all(sock)  # answered and closed without a byte of the body
    assert answer.split(b"\r\n", 1)[0].endswith(b" 413 Request Entity Too Large"), answer[:200]


@pytest.mark.skipif(os.name != "posix", reason="gunicorn runs on Unix only")
def test_gunicorn_behind_the_shipped_nginx_config_answers_while_slow_clients_trickle(tmp_path, procs):
    if nginx_binary() is None:
        if os.environ.get("DASHFLEET_REQUIRE_NGINX") == "1":
            pytest.fail("DASHFLEET_REQUIRE_NGINX=1 but nginx is not installed (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx; scripts/test.sh does as root)")
    gport = free_port()
    env = _env(FLEET_TOKEN=TOKEN, DASHFLEET_CONFIG=str(_config(tmp_path)))
    gunicorn = subprocess.Popen([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{gport}", "--workers", "2",
                                 "--no-control-socket", "dashfleet_web.app:create_app()"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(gunicorn)
    _wait_http(f"http://127.0.0.1:{gport}/healthz", gunicorn)
    nginx, nport, cert = start_nginx(tmp_path, gport)
    procs.append(nginx)
    base = f"https://127.0.0.1:{nport}"
    _wait_http(f"{base}/healthz", nginx, verify=str(cert))
    tls = ssl.create_default_context(cafile=str(cert))
    with SlowClients(nport, 50, "body", every=2.0, tls=tls), SlowClients(nport, 50, "header", every=2.0, tls=tls):
        time.sleep(2.5)
        health = _healthz_and_a_report(base, seq=1, verify=str(cert))
        _healthz_and_a_report(base, seq=2, verify=str(cert))
    assert health.headers.get("Server") == "nginx"  # server_tokens off: no version, no Werkzeug
    nginx.send_signal(signal.SIGQUIT)
    gunicorn.send_signal(signal.SIGTERM)
    assert gunicorn.wait(30) == 0
    nginx.wait(30)


def test_behind_a_trusted_proxy_refused_tokens_are_counted_per_forwarded_address(tmp_path, procs):
    """With `[server] trusted_proxies` naming the proxy (here 127.0.0.1), `dashfleet web` hands
    X-Forwarded-For to the app, so one client's wrong tokens block that client, not everyone
    behind the proxy."""
    proc, port = _start_unit_command(tmp_path, procs, trusted_proxies='["127.0.0.1"]', failed_auth_per_minute=3)
    url = f"http://127.0.0.1:{port}/api/fleet/report"
    report = {"machine_id": "pc-1", "seq": 1, "metrics": {"cpu.percent": 5.0}}
    guesses = [requests.post(url, json=report, timeout=5, headers={"Authorization": "Bearer wrong",
                                                                   "X-Forwarded-For": "192.0.2.7"}).status_code
               for _ in range(5)]
    assert guesses[-1] == 429, guesses
    honest = requests.post(url, json=report, timeout=5, headers={"Authorization": f"Bearer {TOKEN}",
                                                                 "X-Forwarded-For": "192.0.2.8"})
    assert honest.status_code == 201, honest.text
