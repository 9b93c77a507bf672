"""The agent against a real HTTP receiver on 127.0.0.1: delivery, batches, backoff, Retry-After,
refused tokens, invalid reports, TLS, signals, and the CLI around it.

The receiver speaks the report API contract (COMMON.md): 201/200-duplicate for one report, 200
with per-item results for a list, 401 for a wrong token, and whatever a test scripts on top.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import dashfleet_cmd
from dashfleet_agent.runner import EXIT_DELIVERED, EXIT_REFUSED, EXIT_SPOOLED, Agent
from dashfleet_core.config import AgentSettings, load_settings
from dashfleet_core.engine import Engine

TOKEN = "s3cret-token"


class Receiver(ThreadingHTTPServer):
    """A small report server: stores by (machine_id, seq), answers as the contract says.

    `script` is a list of (status, headers, body) answered in turn before normal behaviour;
    `reject` is a set of seqs answered as invalid; `max_list` makes larger lists a 413."""

    daemon_threads = True

    def __init__(self, token: str = TOKEN, certfile: str | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.stored: list[tuple[str, int]] = []
        self.reports: list[dict] = []
        self.script: list[tuple[int, dict, dict]] = []
        self.reject: set[int] = set()
        self.max_list: int | None = None
        scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile)
            self.socket = ctx.wrap_socket(self.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)

    def seqs(self, machine_id: str | None = None) -> list[int]:
        return [s for m, s in self.stored if machine_id in (None, m)]

    def answer(self, headers, raw: bytes) -> tuple[int, dict, dict]:
        with self.lock:
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
            self.requests.append({"auth": headers.get("Authorization"), "body": doc})
            if self.script:
                return self.script.pop(0)
            if headers.get("Authorization") != f"Bearer {self.token}":
                return 401, {}, {"error": "missing or wrong fleet token"}
            if doc is None:
                return 400, {}, {"error": "body is not JSON"}
            if isinstance(doc, list):
                if self.max_list is not None and len(doc) > self.max_list:
                    return 413, {}, {"error": "body over the limit"}
                results = []
                for index, report in enumerate(doc):
                    if report["seq"] in self.reject:
                        results.append({"index": index, "ok": False, "error": "metrics.cpu.percent: bad",
                                        "fields": ["metrics.cpu.percent"]})
                    else:
                        results.append({"index": index, "ok": True, "stored": self._store(report)})
                return 200, {}, {"results": results}
            if doc["seq"] in self.reject:
                return 422, {}, {"error": "metrics.cpu.percent: bad", "fields": ["metrics.cpu.percent"]}
            stored = self._store(doc)
            return (201 if stored else 200), {}, {"stored": stored, "duplicate": not stored,
                                                  "machine_id": doc["machine_id"], "seq": doc["seq"]}

    def _store(self, report: dict) -> bool:
        key = (report["machine_id"], report["seq"])
        if key in self.stored:
            return False
        self.stored.append(key)
        self.reports.append(report)
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/api/fleet/report":
            status, headers, doc = 404, {}, {"error": "not found"}
        else:
            status, headers, doc = self.server.answer(self.headers, raw)
        out = json.dumps(doc).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    srv = Receiver()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def engine():
    return Engine(load_settings(None, env={}))


def make_agent(tmp_path: Path, server: str, engine, **kw) -> Agent:
    cfg = AgentSettings(server=server, token=kw.pop("token", TOKEN), state_dir=str(tmp_path / "state"), **kw)
    return Agent(cfg, engine)


# --- in-process: the loop's decisions ------------------------------------------------------------


def test_once_delivers_a_full_report(tmp_path, receiver, engine):
    agent = make_agent(tmp_path, receiver.url, engine)
    try:
        assert agent.once() == EXIT_DELIVERED
        assert agent.spool.depth() == 0
    finally:
        agent.close()
    [report] = receiver.reports
    assert report["machine_id"] == (tmp_path / "state" / "machine_id").read_text().strip()
    assert report["hostname"] == engine.hostname
    assert "cpu.percent" in report["metrics"] and report["spool_dropped"] == 0
    assert receiver.requests[0]["auth"] == f"Bearer {TOKEN}"


def test_backlog_goes_in_batches_in_order_exactly_once(tmp_path, receiver, engine):
    agent = make_agent(tmp_path, receiver.url, engine, batch_size=3)
    try:
        seqs = [agent.collect() for _ in range(7)]
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert receiver.seqs() == seqs
    sizes = [len(r["body"]) if isinstance(r["body"], list) else 1 for r in receiver.requests]
    assert sizes == [3, 3, 1]


def test_server_down_keeps_reports_and_backs_off(tmp_path, engine):
    down = Receiver()
    url = down.url
    down.stop()                                    # nothing listens there any more
    agent = make_agent(tmp_path, url, engine, backoff_max_seconds=4)
    try:
        nominal = []
        for _ in range(5):
            agent.collect()
            nominal.append(agent.backoff.nominal())
            assert agent.flush(threading.Event()) is False
            assert agent.next_send > time.monotonic()
        assert nominal == [1, 2, 4, 4, 4]            # doubling, capped by backoff_max_seconds
        assert agent.spool.depth() == 5
        assert "cannot reach" in agent.last_answer.message
    finally:
        agent.close()


def test_spool_drops_are_counted_and_told_to_the_server(tmp_path, receiver, engine):
    agent = make_agent(tmp_path, receiver.url, engine, spool_max_bytes=6000)
    try:
        seqs = [agent.collect() for _ in range(12)]      # about 1 kB each: the oldest must go
        dropped = agent.spool.dropped_total
        assert dropped > 0
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert receiver.seqs() == seqs[dropped:]             # the newest survive, in order
    assert receiver.reports[-1]["spool_dropped"] == dropped


def test_retry_after_is_honoured(tmp_path, receiver, engine):
    receiver.script = [(429, {"Retry-After": "120"}, {"error": "slow down"})]
    agent = make_agent(tmp_path, receiver.url, engine)
    try:
        agent.collect()
        assert agent.flush(threading.Event()) is False
        assert agent.next_send - time.monotonic() > 100   # 120 s asked, not the 1 s backoff
        agent.next_send = 0
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert len(receiver.seqs()) == 1


def test_408_request_timeout_is_retried_with_backoff_not_blocked(tmp_path, receiver, engine):
    """`dashfleet web` answers 408 to a request that took over request_timeout_seconds to arrive:
    a slow link, not a wrong URL, so the report is retried after the backoff."""
    receiver.script = [(408, {}, {"error": "the request did not arrive whole within 30 s"})]
    agent = make_agent(tmp_path, receiver.url, engine)
    try:
        agent.collect()
        assert agent.flush(threading.Event()) is False
        assert agent.last_answer.kind == "retry" and "HTTP 408" in agent.last_answer.message
        assert agent.next_send - time.monotonic() < 10   # the 1 s backoff, not blocked_retry_seconds (300)
        agent.next_send = 0
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert len(receiver.seqs()) == 1


def test_5xx_then_recovery_resets_backoff(tmp_path, receiver, engine):
    receiver.script = [(500, {}, {"error": "database locked"})] * 3
    agent = make_agent(tmp_path, receiver.url, engine)
    try:
        agent.collect()
        for _ in range(3):
            assert agent.flush(threading.Event()) is False
        assert agent.backoff.failures == 3
        assert agent.flush(threading.Event()) is True
        assert agent.backoff.failures == 0
    finally:
        agent.close()
    assert len(receiver.seqs()) == 1


def test_refused_token_is_clear_and_not_a_retry_storm(tmp_path, receiver, engine, caplog):
    agent = make_agent(tmp_path, receiver.url, engine, token="Zq9-not-the-token", interval=0.1)
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,))
    try:
        with caplog.at_level("INFO", logger="dashfleet_agent"):
            t.start()
            deadline = time.monotonic() + 10
            while agent.spool.depth() < 10 and time.monotonic() < deadline:
                time.sleep(0.05)                     # ten collections into the spool
            stop.set()
            t.join(10)
        assert agent.spool.depth() >= 10           # still collecting, nothing lost
    finally:
        agent.close()
    assert len(receiver.requests) == 1             # one refused try, then it waits (300 s default)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "refused the agent's token (HTTP 401" in errors[0].getMessage()
    assert "Zq9-not-the-token" not in caplog.text                # the token itself is never logged


def test_invalid_report_in_a_batch_goes_to_dead_letter(tmp_path, receiver, engine):
    agent = make_agent(tmp_path, receiver.url, engine)
    try:
        seqs = [agent.collect() for _ in range(4)]
        receiver.reject = {seqs[1]}
        assert agent.flush(threading.Event()) is True
        assert agent.spool.depth() == 0
    finally:
        agent.close()
    assert receiver.seqs() == [seqs[0], seqs[2], seqs[3]]
    dead = [json.loads(line) for line in (tmp_path / "state" / "dead-letter.jsonl").read_text().splitlines()]
    assert [d["seq"] for d in dead] == [seqs[1]] and dead[0]["fields"] == ["metrics.cpu.percent"]


def test_invalid_single_report_422_goes_to_dead_letter(tmp_path, receiver, engine):
    agent = make_agent(tmp_path, receiver.url, engine)
    try:
        seq = agent.collect()
        receiver.reject = {seq}
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    dead = json.loads((tmp_path / "state" / "dead-letter.jsonl").read_text())
    assert dead["seq"] == seq and dead["status"] == 422 and receiver.seqs() == []


def test_batch_too_large_is_split(tmp_path, receiver, engine):
    receiver.max_list = 2
    agent = make_agent(tmp_path, receiver.url, engine, batch_size=8)
    try:
        seqs = [agent.collect() for _ in range(8)]
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert receiver.seqs() == seqs                   # nothing dead-lettered for being in a big batch


def test_wrong_url_is_blocked_with_a_hint(tmp_path, receiver, engine):
    agent = make_agent(tmp_path, receiver.url + "/not-dashfleet/x", engine)
    try:
        assert agent.once() == EXIT_REFUSED
        assert "HTTP 404" in agent.last_answer.message and "check --server" in agent.last_answer.message
        assert agent.spool.depth() == 1
    finally:
        agent.close()


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    both = tmp_path / "both.pem"
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return cert, both


def test_tls_verified_by_default_with_clear_error_and_ca_bundle(tmp_path, engine, tls_files):
    cert, both = tls_files
    srv = Receiver(certfile=str(both))
    try:
        agent = make_agent(tmp_path, srv.url, engine)
        try:
            assert agent.once() == EXIT_REFUSED
            msg = agent.last_answer.message
            assert msg.startswith("TLS certificate problem") and "ca_bundle" in msg
            assert srv.seqs() == []
        finally:
            agent.close()
        agent = make_agent(tmp_path, srv.url, engine, ca_bundle=str(cert))
        try:
            assert agent.once() == EXIT_DELIVERED
        finally:
            agent.close()
        assert len(srv.seqs()) == 2                  # the spooled one and the new one
        agent = make_agent(tmp_path, srv.url, engine, verify_tls=False)   # off on purpose: still sends
        try:
            assert agent.once() == EXIT_DELIVERED
        finally:
            agent.close()
    finally:
        srv.stop()


# --- the real process: CLI, config, env, signals, no Flask ----------------------------------------


def agent_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_"))}
    env.update(extra)
    return env


def test_cli_once_never_imports_flask(tmp_path, receiver):
    code = ("import sys\nfrom dashfleet_core.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print('FLASK' if any(m == 'flask' or m.startswith('flask.') for m in sys.modules) else 'NOFLASK', rc)\n")
    out = subprocess.run([sys.executable, "-c", code, "agent", "--server", receiver.url, "--token", TOKEN,
                          "--state-dir", str(tmp_path / "s"), "--once"],
                         capture_output=True, text=True, env=agent_env(), timeout=60, cwd=tmp_path)
    assert out.stdout.split() == ["NOFLASK", "0"], out.stderr
    assert len(receiver.seqs()) == 1


def test_cli_reads_agent_table_and_env_with_flag_precedence(tmp_path, receiver):
    cfg = tmp_path / "dashfleet.toml"
    cfg.write_text(f'[agent]\nserver = "{receiver.url}"\ntoken = "from-file"\nstate_dir = "{tmp_path / "s"}"\n')
    base = dashfleet_cmd() + ["agent", "--config", str(cfg), "--once"]
    refused = subprocess.run(base, capture_output=True, text=True, env=agent_env(), timeout=60)
    assert refused.returncode == EXIT_REFUSED and "refused the agent's token" in refused.stderr
    ok = subprocess.run(base, capture_output=True, text=True, timeout=60,
                        env=agent_env(DASHFLEET_AGENT_TOKEN=TOKEN))
    assert ok.returncode == 0, ok.stderr
    assert len(receiver.seqs()) == 2                 # the refused report was kept and sent too
    wrong_flag = subprocess.run(base + ["--token", "flag-wins"], capture_output=True, text=True, timeout=60,
                                env=agent_env(DASHFLEET_AGENT_TOKEN=TOKEN))
    assert wrong_flag.returncode == EXIT_REFUSED
    status = subprocess.run(dashfleet_cmd() + ["agent", "--config", str(cfg), "status", "--json"],
                            capture_output=True, text=True, env=agent_env(), timeout=60)
    doc = json.loads(status.stdout)
    assert doc["spool_depth"] == 1 and doc["last_error"]["status"] == 401
    assert doc["last_delivery"]["count"] == 2
    assert doc["machine_id"] == receiver.reports[0]["machine_id"]


def test_cli_missing_server_is_a_usage_error(tmp_path):
    out = subprocess.run(dashfleet_cmd() + ["agent", "--state-dir", str(tmp_path), "--once"],
                         capture_output=True, text=True, env=agent_env(), timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and "--server and --token missing" in out.stderr


def test_cli_unreachable_server_spools_with_exit_75(tmp_path):
    gone = Receiver()
    url = gone.url
    gone.stop()
    out = subprocess.run(dashfleet_cmd() + ["agent", "--server", url, "--token", TOKEN, "--state-dir",
                                            str(tmp_path), "--once"],
                         capture_output=True, text=True, env=agent_env(), timeout=60)
    assert out.returncode == EXIT_SPOOLED and "cannot reach" in out.stderr
    status = subprocess.run(dashfleet_cmd() + ["agent", "status", "--state-dir", str(tmp_path), "--json"],
                            capture_output=True, text=True, env=agent_env(), timeout=60)
    doc = json.loads(status.stdout)
    assert doc["spool_depth"] == 1 and doc["last_delivery"] is None
    assert doc["last_error"]["message"].startswith("cannot reach")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_is_graceful(tmp_path, receiver, sig):
    state = tmp_path / "s"
    proc = subprocess.Popen(dashfleet_cmd() + ["agent", "--server", receiver.url, "--token", TOKEN,
                                               "--state-dir", str(state), "--interval", "0.2"],
                            stderr=subprocess.PIPE, text=True, env=agent_env())
    try:
        deadline = time.monotonic() + 30
        while len(receiver.seqs()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "dashfleet agent stopped" in err
    db = sqlite3.connect(state / "spool.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not list(state.glob("*.tmp"))
    seqs = receiver.seqs()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
