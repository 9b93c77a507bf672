"""What the agent believes (issue 12): machine keys, seq conflicts, answers that are not DashFleet's,
Retry-After, the token file and the status of an overridden machine id.

`ContractServer` is a real HTTP server on 127.0.0.1 speaking the report API as the server does
after issue 12 (it binds a machine's key on first sight, answers a seq stored with other content as
a conflict) plus answers a test scripts as raw bytes (a captive portal, a proxy's error page). It
records every request, so the tests assert on what the agent sent, in which order, and what it kept.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import dashfleet_cmd
from dashfleet_agent.runner import EXIT_DELIVERED, EXIT_REFUSED, EXIT_USAGE, Agent
from dashfleet_core.config import AgentSettings, load_settings
from dashfleet_core.engine import Engine

TOKEN = "trust-fleet-token"
KEY_HEADER = "X-DashFleet-Machine-Key"
RESET_HINT = "an operator can reset the key with `dashfleet machine reset-key {mid}`"


class ContractServer(ThreadingHTTPServer):
    """The report API with machine keys and conflicts; `script` answers go first, as raw bytes."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.stored: dict[tuple[str, int], dict] = {}   # (machine_id, seq) -> report without seq
        self.order: list[tuple[str, int]] = []          # as stored, in arrival order
        self.keys: dict[str, str] = {}                  # machine_id -> bound key
        self.script: list[tuple[int, dict, bytes]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)

    def seqs(self, machine_id: str) -> list[int]:
        return [s for m, s in self.order if m == machine_id]

    def preload(self, machine_id: str, seqs: list[int]) -> None:
        """Seqs stored earlier with other content (another machine under the same id, a restored VM)."""
        for seq in seqs:
            self.stored[(machine_id, seq)] = {"machine_id": machine_id, "from": "someone else"}

    def last_seq(self, machine_id: str) -> int:
        return max((s for m, s in self.stored if m == machine_id), default=0)

    def answer(self, headers, raw: bytes) -> tuple[int, dict, bytes]:
        with self.lock:
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
            self.requests.append({"headers": dict(headers), "body": doc})
            if self.script:
                return self.script.pop(0)
            if headers.get("Authorization") != f"Bearer {TOKEN}":
                return _json(401, {"error": "wrong token: check the FLEET_TOKEN this client uses"})
            reports = doc if isinstance(doc, list) else [doc]
            key = headers.get(KEY_HEADER)
            for report in reports:
                bound = self.keys.get(report["machine_id"])
                if bound is not None and bound != key:
                    mid = report["machine_id"]
                    return _json(403, {"error": f"machine {mid} is bound to another machine key; "
                                                + RESET_HINT.format(mid=mid)})
            for report in reports:
                if key and report["machine_id"] not in self.keys:
                    self.keys[report["machine_id"]] = key
            results = [self._one(index, report) for index, report in enumerate(reports)]
            if isinstance(doc, list):
                return _json(200, {"results": results})
            [result] = results
            report = reports[0]
            if result.get("conflict"):
                return _json(409, {"error": result["error"], "last_seq": result["last_seq"]})
            return _json(201 if result["stored"] else 200,
                         {"stored": result["stored"], "machine_id": report["machine_id"], "seq": report["seq"],
                          **({} if result["stored"] else {"duplicate": True})})

    def _one(self, index: int, report: dict) -> dict:
        key = (report["machine_id"], report["seq"])
        content = {k: v for k, v in report.items() if k != "seq"}
        if key in self.stored:
            if self.stored[key] == content:
                return {"index": index, "ok": True, "stored": False}
            return {"index": index, "ok": False, "conflict": True, "last_seq": self.last_seq(key[0]),
                    "error": f"seq {key[1]} is already stored with other content"}
        self.stored[key] = content
        self.order.append(key)
        return {"index": index, "ok": True, "stored": True}


def _json(status: int, doc: dict) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(doc).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, headers, body = self.server.answer(self.headers, raw)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ContractServer()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def engine():
    return Engine(load_settings(None, env={}))


def make_agent(state: Path, server: str, engine, **kw) -> Agent:
    kw.setdefault("machine_id", "pc-1")
    settings = AgentSettings(server=server, token=kw.pop("token", TOKEN), state_dir=str(state), **kw)
    return Agent(settings, engine)


def body_of(agent: Agent, seq: int) -> dict:
    [item] = [i for i in agent.spool.peek(1000) if i.seq == seq]
    return json.loads(item.body)


def dead_letters(state: Path) -> list[dict]:
    path = state / "dead-letter.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- A. machine keys -----------------------------------------------------------------------------


def test_machine_key_is_private_sent_with_every_report_and_kept_across_restarts(tmp_path, server, engine):
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine)
    try:
        assert agent.once() == EXIT_DELIVERED
    finally:
        agent.close()
    key_file = state / "machine.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 43                                # 256 bits, url-safe base64
    agent = make_agent(state, server.url, engine)        # a restart keeps the key
    try:
        assert agent.once() == EXIT_DELIVERED
    finally:
        agent.close()
    sent = [r["headers"].get(KEY_HEADER) for r in server.requests]
    assert sent == [key, key]
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert len(server.seqs("pc-1")) == 2


def test_a_clone_with_another_key_is_refused_once_and_keeps_its_spool(tmp_path, server, engine, caplog):
    first = make_agent(tmp_path / "a", server.url, engine)
    try:
        assert first.once() == EXIT_DELIVERED            # binds pc-1 to a's key on the server
    finally:
        first.close()
    clone = make_agent(tmp_path / "b", server.url, engine, interval=0.05)
    stop = threading.Event()
    try:
        with caplog.at_level("INFO", logger="dashfleet_agent"):
            t = threading.Thread(target=clone.run, args=(stop,))
            t.start()
            deadline = time.monotonic() + 30
            while clone.spool.depth() < 5 and time.monotonic() < deadline:
                stop.wait(0.02)
            stop.set()
            t.join(10)
        assert clone.spool.depth() >= 5                  # nothing lost
        assert clone.retry_delay == 300                  # the refused-credential wait
    finally:
        clone.close()
    assert len(server.requests) == 2                     # a's report, one refused try of b's
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "HTTP 403" in errors[0] and RESET_HINT.format(mid="pc-1") in errors[0]
    assert (tmp_path / "a" / "machine.key").read_text() not in caplog.text


KEY_MAKER = ("import sys\nfrom pathlib import Path\nfrom dashfleet_agent.machine_key import load_or_create\n"
             "print(load_or_create(Path(sys.argv[1])))\n")


def test_two_starts_at_once_make_one_key(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", KEY_MAKER, str(state)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    keys = {out.strip() for out, _ in outs}
    assert keys == {(state / "machine.key").read_text().strip()}
    assert [p.name for p in state.iterdir()] == ["machine.key"]   # no temporary files left


def test_a_damaged_key_file_is_a_clear_error_not_a_new_key(tmp_path, engine):
    state = tmp_path / "state"
    state.mkdir()
    (state / "machine.key").write_text("\n")
    with pytest.raises(Exception) as err:
        make_agent(state, "http://127.0.0.1:9", engine)
    assert "machine.key" in str(err.value) and "reset-key" in str(err.value)
    assert (state / "machine.key").read_text() == "\n"   # not replaced behind the operator's back


# --- B. seq conflicts ----------------------------------------------------------------------------


def test_batch_conflict_renumbers_the_rest_in_order_and_loses_nothing(tmp_path, server, engine, caplog):
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine, batch_size=10)
    try:
        seqs = [agent.collect() for _ in range(4)]
        originals = {s: body_of(agent, s) for s in seqs}
        s0 = seqs[0]
        server.preload("pc-1", [s0 + 1, s0 + 2, s0 + 3, s0 + 4, s0 + 5])   # last_seq = s0 + 5
        with caplog.at_level("WARNING", logger="dashfleet_agent"):
            assert agent.flush(threading.Event()) is True
        assert agent.spool.depth() == 0
        assert agent.spool.next_seq() == s0 + 9                  # the counter moved past them
        fresh = agent.collect()
        assert fresh == s0 + 9
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert server.seqs("pc-1") == [s0, s0 + 6, s0 + 7, s0 + 8, s0 + 9]
    for old, new in zip(seqs[1:], [s0 + 6, s0 + 7, s0 + 8]):    # same reports, new numbers
        assert server.stored[("pc-1", new)] == {k: v for k, v in originals[old].items() if k != "seq"}
    assert dead_letters(state) == []
    warnings = [r.getMessage() for r in caplog.records if "renumbered" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{s0 + 1}" in warnings[0] and f"{s0 + 6}" in warnings[0]
    status = subprocess.run(dashfleet_cmd() + ["agent", "status", "--state-dir", str(state), "--json"],
                            capture_output=True, text=True, timeout=60, env=_clean_env())
    doc = json.loads(status.stdout)
    assert doc["renumberings"] == 1
    assert doc["last_renumbering"]["from_seq"] == s0 + 1 and doc["last_renumbering"]["to_seq"] == s0 + 6
    assert doc["last_renumbering"]["count"] == 3


def test_single_report_409_renumbers_and_sends_again(tmp_path, server, engine):
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine, batch_size=1)
    try:
        seqs = [agent.collect() for _ in range(3)]
        s0 = seqs[0]
        server.preload("pc-1", [s0, s0 + 1])                    # last_seq = s0 + 1
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert server.seqs("pc-1") == [s0 + 2, s0 + 3, s0 + 4]
    posted = [r["body"]["seq"] for r in server.requests]
    assert posted == [s0, s0 + 2, s0 + 3, s0 + 4]              # one conflict, then the renumbered three
    text = subprocess.run(dashfleet_cmd() + ["agent", "status", "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=60, env=_clean_env()).stdout
    assert f"renumbered     1 time(s), last" in text and f"{s0} -> {s0 + 2}" in text


def test_identical_content_under_a_seq_stays_a_duplicate(tmp_path, server, engine):
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine)
    try:
        seq = agent.collect()
        report = body_of(agent, seq)
        server.stored[("pc-1", seq)] = {k: v for k, v in report.items() if k != "seq"}
        assert agent.flush(threading.Event()) is True
        assert agent.spool.next_seq() == seq + 1                # nothing renumbered
    finally:
        agent.close()
    assert server.seqs("pc-1") == []                            # acknowledged as a duplicate


def test_a_batch_answers_each_item_on_its_own(tmp_path, server, engine):
    """One result per kind in one batch: stored, rejected (dead-lettered), conflict (renumbered)."""
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine, batch_size=10)
    try:
        seqs = [agent.collect() for _ in range(3)]
        s0 = seqs[0]
        server.preload("pc-1", [s0 + 2])
        results = [{"index": 0, "ok": True, "stored": True},
                   {"index": 1, "ok": False, "error": "metrics.cpu.percent: bad", "fields": ["metrics.cpu.percent"]},
                   {"index": 2, "ok": False, "conflict": True, "last_seq": s0 + 2, "error": "conflict"}]
        server.script = [_json(200, {"results": results})]
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert [r["body"][0]["seq"] if isinstance(r["body"], list) else r["body"]["seq"]
            for r in server.requests] == [s0, s0 + 3]
    assert [d["seq"] for d in dead_letters(state)] == [s0 + 1]
    assert server.seqs("pc-1") == [s0 + 3]


# --- C. only a DashFleet acknowledgement empties the spool ---------------------------------------

HTML = "text/html; charset=utf-8"
PORTAL = b"<html><title>Hotel WiFi</title>\x1b[31m please log in</html>"


def _single_ack(seq_delta: int = 0, **extra):
    def make(sent: dict) -> tuple[int, dict, bytes]:
        return _json(201, {"stored": True, "machine_id": sent["machine_id"], "seq": sent["seq"] + seq_delta,
                           **extra})
    return make


HOSTILE = {
    "captive portal 200 html": (200, {"Content-Type": HTML}, PORTAL),
    "empty 200": (200, {}, b""),
    "200 json without fields": (200, {"Content-Type": "application/json"}, b"{}"),
    "200 json array": (200, {"Content-Type": "application/json"}, b"[]"),
    "200 ack in text/plain": (200, {"Content-Type": "text/plain"},
                              b'{"stored": true, "machine_id": "pc-1", "seq": 1}'),
    "204 no content": (204, {}, b""),
    "proxy 413 html": (413, {"Content-Type": HTML}, b"<html>413 Request Entity Too Large</html>"),
    "proxy 400 html": (400, {"Content-Type": HTML}, b"<html>400 Bad Request</html>"),
    "422 json without error": (422, {"Content-Type": "application/json"}, b'{"detail": "x"}'),
    "409 without last_seq": (409, {"Content-Type": HTML}, b"<html>Conflict</html>"),
}


@pytest.mark.parametrize("answer", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_single_report_stays_spooled_on_an_answer_that_is_not_dashfleets(tmp_path, server, engine, answer):
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine)
    try:
        seq = agent.collect()
        server.script = [answer]
        assert agent.flush(threading.Event()) is False
        assert [i.seq for i in agent.spool.peek(10)] == [seq]
        assert agent.last_answer.kind == "retry" and agent.retry_delay <= 30
        assert dead_letters(state) == []
        assert agent.flush(threading.Event()) is True           # the real server answers next
    finally:
        agent.close()
    assert server.seqs("pc-1") == [seq]


@pytest.mark.parametrize("make", [_single_ack(seq_delta=-1), _single_ack(stored="yes")],
                         ids=["ack for another seq", "stored not a bool"])
def test_a_single_ack_must_name_what_was_sent(tmp_path, server, engine, make):
    agent = make_agent(tmp_path / "state", server.url, engine)
    try:
        seq = agent.collect()
        server.script = [make(body_of(agent, seq))]
        assert agent.flush(threading.Event()) is False
        assert agent.spool.depth() == 1
    finally:
        agent.close()


BAD_BATCH = {
    "one result for two reports": {"results": [{"index": 0, "ok": True, "stored": True}]},
    "index out of place": {"results": [{"index": 1, "ok": True}, {"index": 0, "ok": True}]},
    "ok not a bool": {"results": [{"index": 0, "ok": 1}, {"index": 1, "ok": True}]},
    "no results": {"stored": 2},
}


@pytest.mark.parametrize("doc", BAD_BATCH.values(), ids=BAD_BATCH.keys())
def test_a_batch_stays_spooled_without_one_valid_result_per_report(tmp_path, server, engine, doc):
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine)
    try:
        seqs = [agent.collect() for _ in range(2)]
        server.script = [_json(200, doc)]
        assert agent.flush(threading.Event()) is False
        assert [i.seq for i in agent.spool.peek(10)] == seqs
        assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert server.seqs("pc-1") == seqs and dead_letters(state) == []


def test_a_batch_in_html_is_not_taken_as_stored(tmp_path, server, engine):
    agent = make_agent(tmp_path / "state", server.url, engine)
    try:
        seqs = [agent.collect() for _ in range(3)]
        server.script = [(200, {"Content-Type": HTML}, PORTAL)]
        assert agent.flush(threading.Event()) is False
        assert [i.seq for i in agent.spool.peek(10)] == seqs
    finally:
        agent.close()


def test_a_hostile_answer_is_logged_once_escaped_with_what_came_back(tmp_path, server, engine, caplog):
    agent = make_agent(tmp_path / "state", server.url, engine)
    try:
        agent.collect()
        server.script = [(200, {"Content-Type": HTML}, PORTAL + f"<!-- {n} -->".encode()) for n in range(4)]
        with caplog.at_level("DEBUG", logger="dashfleet_agent"):
            for _ in range(4):
                assert agent.flush(threading.Event()) is False
                agent.next_send = 0
        assert agent.spool.depth() == 1
    finally:
        agent.close()
    shown = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(shown) == 1, shown                           # once per kind of failure, not per try
    assert "HTTP 200" in shown[0] and "text/html" in shown[0] and "Hotel WiFi" in shown[0]
    assert "\x1b" not in caplog.text and "\\x1b" in shown[0]  # escaped, not sent to the terminal
    assert agent.backoff.failures == 4                       # retried with backoff


# --- D. Retry-After, token file, status ----------------------------------------------------------


def test_retry_after_of_an_hour_waits_five_minutes_at_most(tmp_path, server, engine):
    agent = make_agent(tmp_path / "state", server.url, engine)
    try:
        agent.collect()
        server.script = [(503, {"Retry-After": "3600", "Content-Type": "application/json"},
                          b'{"error": "maintenance"}')]
        assert agent.flush(threading.Event()) is False
        assert agent.retry_delay == 300
        assert agent.spool.depth() == 1
    finally:
        agent.close()


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_"))}
    env.update(extra)
    return env


def _agent_cli(tmp_path, *args, env=None):
    return subprocess.run(dashfleet_cmd() + ["agent", *args], capture_output=True, text=True, timeout=90,
                          env=env or _clean_env(), cwd=tmp_path)


def test_token_file_from_flag_env_and_config(tmp_path, server):
    token_file = tmp_path / "agent.token"
    token_file.write_text(f"  {TOKEN}  \nsecond line is ignored\n")
    token_file.chmod(0o600)
    base = ["--server", server.url, "--state-dir", str(tmp_path / "s"), "--machine-id", "pc-1", "--once"]
    out = _agent_cli(tmp_path, "--token-file", str(token_file), *base)
    assert out.returncode == EXIT_DELIVERED, out.stderr
    out = _agent_cli(tmp_path, *base, env=_clean_env(DASHFLEET_AGENT_TOKEN_FILE=str(token_file)))
    assert out.returncode == EXIT_DELIVERED, out.stderr
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ntoken_file = "{token_file}"\n')
    out = _agent_cli(tmp_path, "--config", str(config), *base)
    assert out.returncode == EXIT_DELIVERED, out.stderr
    # The flag outranks a token from the environment, as every other setting does.
    out = _agent_cli(tmp_path, "--token-file", str(token_file), *base,
                     env=_clean_env(DASHFLEET_AGENT_TOKEN="wrong"))
    assert out.returncode == EXIT_DELIVERED, out.stderr
    assert [r["headers"]["Authorization"] for r in server.requests] == [f"Bearer {TOKEN}"] * 4
    assert TOKEN not in out.stderr


def test_the_token_given_outranks_the_other_form_in_the_config(tmp_path, server):
    """Token and token file are one setting: the flag's (or environment's) form replaces the config
    file's other form; the file giving both is an error."""
    token_file = tmp_path / "agent.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    base = ["--server", server.url, "--state-dir", str(tmp_path / "s"), "--machine-id", "pc-1", "--once"]
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ntoken_file = "{tmp_path / "not-there.token"}"\n')
    out = _agent_cli(tmp_path, "--config", str(config), "--token", TOKEN, *base)
    assert out.returncode == EXIT_DELIVERED, out.stderr
    out = _agent_cli(tmp_path, "--config", str(config), *base, env=_clean_env(DASHFLEET_AGENT_TOKEN=TOKEN))
    assert out.returncode == EXIT_DELIVERED, out.stderr
    config.write_text('[agent]\ntoken = "Zq9-the-wrong-token"\n')
    out = _agent_cli(tmp_path, "--config", str(config), "--token-file", str(token_file), *base)
    assert out.returncode == EXIT_DELIVERED, out.stderr
    assert [r["headers"]["Authorization"] for r in server.requests] == [f"Bearer {TOKEN}"] * 3
    config.write_text(f'[agent]\ntoken = "{TOKEN}"\ntoken_file = "{token_file}"\n')
    out = _agent_cli(tmp_path, "--config", str(config), *base)
    assert out.returncode == EXIT_USAGE and "[agent] token and token_file are both set" in out.stderr


def test_the_agent_runs_only_on_resolved_settings(tmp_path, engine):
    """`Agent` takes the [agent] settings once the command line has read the token file and set the
    state folder; given them unresolved it says so instead of sending no token."""
    unresolved = AgentSettings(server="http://127.0.0.1:9", token_file=str(tmp_path / "agent.token"),
                               state_dir=str(tmp_path / "state"))
    with pytest.raises(ValueError, match="token"):
        Agent(unresolved, engine)
    assert not (tmp_path / "state").exists()


def test_token_file_missing_or_empty_is_a_clear_error(tmp_path, server):
    base = ["--server", server.url, "--state-dir", str(tmp_path / "s"), "--once"]
    missing = tmp_path / "nope.token"
    out = _agent_cli(tmp_path, "--token-file", str(missing), *base)
    assert out.returncode == EXIT_USAGE
    assert str(missing) in out.stderr and "cannot read the token file" in out.stderr
    empty = tmp_path / "empty.token"
    empty.write_text("\n  \n")
    out = _agent_cli(tmp_path, "--token-file", str(empty), *base)
    assert out.returncode == EXIT_USAGE and str(empty) in out.stderr and "empty" in out.stderr
    token_file = tmp_path / "agent.token"
    token_file.write_text(TOKEN)
    out = _agent_cli(tmp_path, "--token-file", str(token_file), "--token", TOKEN, *base)
    assert out.returncode == EXIT_USAGE and "not both" in out.stderr
    assert server.requests == []
    assert not (tmp_path / "s" / "spool.db").exists()          # refused before anything was collected


def test_status_shows_the_machine_id_given_on_the_command_line(tmp_path, server):
    state = tmp_path / "s"
    out = _agent_cli(tmp_path, "--server", server.url, "--token", TOKEN, "--state-dir", str(state),
                     "--machine-id", "kiosk-7", "--once")
    assert out.returncode == EXIT_DELIVERED, out.stderr
    text = _agent_cli(tmp_path, "status", "--state-dir", str(state))
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].startswith("machine id     kiosk-7")
    assert "machine key    present" in text.stdout
    assert (state / "machine.key").read_text().strip() not in text.stdout
    doc = json.loads(_agent_cli(tmp_path, "status", "--state-dir", str(state), "--json").stdout)
    assert doc["machine_id"] == "kiosk-7" and doc["machine_key"] is True
    assert not (state / "machine_id").exists()                  # the override is not written as the id


def test_refused_exit_code_for_a_refused_key(tmp_path, server, engine):
    first = make_agent(tmp_path / "a", server.url, engine)
    try:
        assert first.once() == EXIT_DELIVERED
    finally:
        first.close()
    clone = make_agent(tmp_path / "b", server.url, engine)
    try:
        assert clone.once() == EXIT_REFUSED
        assert clone.spool.depth() == 1
    finally:
        clone.close()


def test_a_server_answering_every_number_with_a_conflict_is_not_a_loop(tmp_path, server, engine):
    agent = make_agent(tmp_path / "state", server.url, engine)
    try:
        s0 = agent.collect()
        server.script = [_json(409, {"error": "conflict", "last_seq": s0 + 10 * k}) for k in range(1, 10)]
        assert agent.flush(threading.Event()) is False
        assert len(server.requests) == 4                        # three renumberings, then it waits
        assert agent.last_answer.kind == "delivered" and agent.retry_delay is not None
        assert [i.seq for i in agent.spool.peek(10)] == [s0 + 31]   # kept, under its latest number
    finally:
        agent.close()


def test_the_servers_own_words_are_escaped_in_the_log(tmp_path, server, engine, caplog):
    """A rejection's error and field names come from the network: no terminal control reaches the log."""
    state = tmp_path / "state"
    agent = make_agent(state, server.url, engine)
    try:
        seq = agent.collect()
        server.script = [_json(422, {"error": "bad\x1b[2J value\nFORGED LOG LINE", "fields": ["metrics.\x1b[31mx"]})]
        with caplog.at_level("INFO", logger="dashfleet_agent"):
            assert agent.flush(threading.Event()) is True
    finally:
        agent.close()
    assert [d["seq"] for d in dead_letters(state)] == [seq]       # a real DashFleet rejection: dead-lettered
    assert "\x1b" not in caplog.text and "\nFORGED" not in caplog.text
    assert "bad\\x1b[2J value\\nFORGED LOG LINE" in caplog.text
