"""The server as real processes on 127.0.0.1: `dashfleet web` (self-report, generated token,
SIGTERM, no children), durability across SIGKILL, and gunicorn / waitress with jobs running once
per deployment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO, dashfleet_cmd, free_port

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _config(tmp_path: Path, **server) -> Path:
    lines = ["[storage]", f'url = "sqlite:///{tmp_path}/dashfleet.db"', "", "[server]",
             f'data_dir = "{tmp_path}"']
    lines += [f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
              for k, v in server.items()]
    path = tmp_path / "dashfleet.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


OPERATOR_TOKEN = "operator-token-of-the-process-tests"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}  # reads need a credential


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLEET_TOKEN", "ACTION_TOKEN", "HOST", "PORT", "DASHFLEET_STORAGE", "DASHFLEET_CONFIG")}
    env["ACTION_TOKEN"] = OPERATOR_TOKEN
    env.update(extra)
    return env


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"server exited with {proc.returncode}: {out}\n{err}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def _start_web(tmp_path: Path, port: int, config: Path, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(dashfleet_cmd() + ["web", "--port", str(port), "--config", str(config)],
                            cwd=tmp_path, env=env or _env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


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


def test_dashfleet_web_shows_this_machine_requires_a_generated_token_says_where_once_and_stops_on_sigterm(tmp_path, procs):
    import psutil

    port = free_port()
    config = _config(tmp_path, self_interval=1.0)
    proc = _start_web(tmp_path, port, config)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    machines = []
    while time.monotonic() < deadline and not machines:
        machines = requests.get(base + "/api/fleet", headers=OPERATOR, timeout=5).json()["machines"]
        time.sleep(0.2)
    assert len(machines) == 1 and machines[0]["expired"] is False
    assert psutil.Process(proc.pid).children(recursive=True) == []

    token_file = tmp_path / "fleet_token"
    assert token_file.exists() and (os.name != "posix" or (token_file.stat().st_mode & 0o777) == 0o600)
    report = {"machine_id": "pc-1", "seq": 1, "metrics": {"cpu.percent": 5.0}}
    assert requests.post(base + "/api/fleet/report", json=report, timeout=5).status_code == 401
    token = token_file.read_text().strip()
    r = requests.post(base + "/api/fleet/report", json=report, timeout=5,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201

    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(15)
    assert rc == 0, proc.communicate()[1][-3000:]
    out, err = proc.stdout.read(), proc.stderr.read()
    assert (out + err).count(str(token_file)) == 1, "where the new token is: said once"
    assert token not in out + err
    assert "stopped" in out

    again = _start_web(tmp_path, port, config)  # the token file exists now: said once, on stdout
    procs.append(again)
    again.send_signal(signal.SIGTERM)
    assert again.wait(15) == 0
    out, err = again.stdout.read(), again.stderr.read()
    assert out.count(str(token_file)) == 1 and str(token_file) not in err and token not in out + err


def test_host_and_port_come_from_the_environment(tmp_path, procs):
    port = free_port()
    proc = subprocess.Popen(dashfleet_cmd() + ["web", "--config", str(_config(tmp_path))], cwd=tmp_path,
                            env=_env(PORT=str(port), HOST="127.0.0.1", FLEET_TOKEN="t"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    out = proc.stdout.read()
    assert f"http://127.0.0.1:{port}/" in out
    assert "Agents authenticate with FLEET_TOKEN as configured" in out
    assert not (tmp_path / "fleet_token").exists()


def test_every_report_answered_2xx_is_stored_exactly_once_across_sigkill(tmp_path, procs):
    from dashfleet_core.config import load_settings
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    port = free_port()
    config = _config(tmp_path, report_self=False)
    env = _env(FLEET_TOKEN="kill-test")
    proc = _start_web(tmp_path, port, config, env)
    procs.append(proc)
    url = f"http://127.0.0.1:{port}/api/fleet/report"
    headers = {"Authorization": "Bearer kill-test"}
    acked: set[tuple[str, int]] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def sender(machine: str, batch: int) -> None:
        seq = 0
        session = requests.Session()
        while not stop.is_set():
            items = [{"machine_id": machine, "seq": seq + i, "metrics": {"cpu.percent": 1.0 + i}}
                     for i in range(batch)]
            try:
                r = session.post(url, json=items if batch > 1 else items[0], headers=headers, timeout=5)
            except requests.RequestException:
                return  # the server died under us: this request was never acknowledged
            if r.status_code in (200, 201):
                with lock:
                    if batch > 1:
                        acked.update((machine, x["index"] + seq) for x in r.json()["results"] if x["ok"])
                    else:
                        acked.add((machine, seq))
            seq += batch

    threads = [threading.Thread(target=sender, args=(f"pc-{i}", b)) for i, b in enumerate((1, 1, 20))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(acked) < 400:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 400

    proc2 = _start_web(tmp_path, port, config, env)
    procs.append(proc2)
    # An agent retries what it is unsure of, the same content: acknowledged reports come back as
    # duplicates (pc-2 sent batches of 20, item i with cpu 1 + i).
    resend = sorted(acked)[:50]
    r = requests.post(url, json=[{"machine_id": m, "seq": s, "metrics": {"cpu.percent": 1.0 + (s % 20 if m == "pc-2" else 0)}}
                                 for m, s in resend], headers=headers, timeout=10)
    assert r.status_code == 200 and r.json()["duplicates"] == 50 and r.json()["stored"] == 0
    proc2.send_signal(signal.SIGTERM)
    assert proc2.wait(15) == 0

    settings = load_settings(config, env={})
    storage = open_storage(settings, make_plugin_manager(settings))
    try:
        stored: dict[tuple[str, int], int] = {}
        for item in storage.iter_reports():
            key = (item.report.machine_id, item.report.seq)
            stored[key] = stored.get(key, 0) + 1
    finally:
        storage.close()
    missing = acked - set(stored)
    assert not missing, f"{len(missing)} acknowledged reports lost, e.g. {sorted(missing)[:5]}"
    assert all(n == 1 for n in stored.values())


def test_a_full_disk_answers_503_loses_nothing_acknowledged_and_the_server_carries_on(small_disk, procs):
    """`dashfleet web` with its database on a disk that fills up: batches are answered 503 with
    Retry-After and a message saying the disk is full (one log line each, no traceback); every
    report answered 2xx is stored once; once there is room the same batch is stored."""
    from dashfleet_core.config import load_settings
    from dashfleet_core.plugins import make_plugin_manager
    from dashfleet_core.storage import open_storage

    port = free_port()
    config = _config(small_disk.path, report_self=False)
    env = _env(FLEET_TOKEN="disk")
    proc = _start_web(small_disk.path, port, config, env)
    procs.append(proc)
    url, headers = f"http://127.0.0.1:{port}/api/fleet/report", {"Authorization": "Bearer disk"}

    def batch(start: int) -> list[dict]:
        return [{"machine_id": f"pc-{i % 5}", "seq": start + i,
                 "metrics": {f"app.m{k}": float(start + i + k) for k in range(60)}} for i in range(50)]

    acked: set[tuple[str, int]] = set()
    small_disk.fill(leave=64 * 1024)
    refused, start = None, 0
    while refused is None and start < 50_000:
        r = requests.post(url, json=batch(start), headers=headers, timeout=30)
        if r.status_code == 200:
            acked.update((item["machine_id"], item["seq"]) for item in batch(start))
            start += 50
        else:
            refused = r
    assert refused is not None and refused.status_code == 503, "the disk never filled"
    assert "disk is full" in refused.json()["error"] and refused.headers["Retry-After"]
    small_disk.fill()  # not a byte left: the jobs' lease and alerting writes fail for a while too
    time.sleep(1.5)
    assert requests.get(f"http://127.0.0.1:{port}/api/fleet", headers=OPERATOR, timeout=10).status_code == 200  # reads go on
    small_disk.free()
    r = requests.post(url, json=batch(start), headers=headers, timeout=30)
    assert r.status_code == 200 and r.json()["stored"] == 50
    acked.update((item["machine_id"], item["seq"]) for item in batch(start))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    err = proc.stderr.read()
    assert "the disk is full" in err and "Traceback" not in err

    settings = load_settings(config, env={})
    storage = open_storage(settings, make_plugin_manager(settings))
    try:
        stored = [(item.report.machine_id, item.report.seq) for item in storage.iter_reports()]
    finally:
        storage.close()
    assert acked <= set(stored) and len(stored) == len(set(stored))


def _probe_pids(path: Path, want: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= want:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"the probe job ran {len(lines)} times, expected {want}")


def _gunicorn_with_probe(tmp_path: Path, probe: Path, procs: list, token: str,
                         **server) -> tuple[subprocess.Popen, int]:
    """gunicorn, 2 workers, with the `web_job_probe` plugin writing to `probe`; answering."""
    config = _config(tmp_path, **server)
    (tmp_path / "dashfleet.toml").write_text(config.read_text() + '\n[plugins]\nmodules = ["web_job_probe"]\n')
    port = free_port()
    env = _env(DASHFLEET_CONFIG=str(config), DASHFLEET_PROBE_FILE=str(probe), FLEET_TOKEN=token,
               PYTHONPATH=str(TESTS))
    proc = subprocess.Popen([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                             "--no-control-socket", "dashfleet_web.app:create_app()"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, port


@pytest.mark.skipif(os.name != "posix", reason="gunicorn runs on Unix only")
def test_gunicorn_two_workers_run_scheduled_jobs_once_per_deployment(tmp_path, procs):
    import psutil

    probe = tmp_path / "probe.txt"
    proc, port = _gunicorn_with_probe(tmp_path, probe, procs, token="g", self_interval=0.5)
    deadline = time.monotonic() + 30
    while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = {str(c.pid) for c in psutil.Process(proc.pid).children()}
    assert len(workers) == 2
    lines = _probe_pids(probe, 10)
    assert len(set(lines)) == 1 and set(lines) <= workers, (lines, workers)
    r = requests.post(f"http://127.0.0.1:{port}/api/fleet/report", headers={"Authorization": "Bearer g"},
                      json={"machine_id": "pc-1", "seq": 1}, timeout=5)
    assert r.status_code == 201
    ids = {m["machine_id"] for m in requests.get(f"http://127.0.0.1:{port}/api/fleet", headers=OPERATOR, timeout=5).json()["machines"]}
    assert "pc-1" in ids and len(ids) == 2  # pc-1 and the server's own machine
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


@pytest.mark.skipif(os.name != "posix", reason="gunicorn runs on Unix only")
def test_gunicorn_jobs_move_to_another_worker_when_the_runner_is_killed(tmp_path, procs):
    """One worker per host runs the jobs (a file lock); SIGKILL it and another process takes the
    lock, and the jobs run again there once the dead runner's lease has lapsed."""
    import psutil

    probe = tmp_path / "probe.txt"
    proc, _ = _gunicorn_with_probe(tmp_path, probe, procs, token="k", report_self=False)
    runner = _probe_pids(probe, 3)[-1]
    os.kill(int(runner), signal.SIGKILL)
    probe.write_text("")
    # the probe's lease lives 30 s past its holder (lease_ttl): the next runner waits it out
    after = _probe_pids(probe, 3, timeout=90)
    assert runner not in after and len(set(after)) == 1
    assert set(after) <= {str(c.pid) for c in psutil.Process(proc.pid).children()}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_waitress_serves_the_app_and_runs_its_jobs(tmp_path, procs):
    probe = tmp_path / "probe.txt"
    config = _config(tmp_path)
    (tmp_path / "dashfleet.toml").write_text(config.read_text() + '\n[plugins]\nmodules = ["web_job_probe"]\n')
    port = free_port()
    env = _env(DASHFLEET_CONFIG=str(config), DASHFLEET_PROBE_FILE=str(probe), FLEET_TOKEN="w",
               PYTHONPATH=str(TESTS))
    proc = subprocess.Popen([str(BIN / "waitress-serve"), f"--listen=127.0.0.1:{port}", "--threads=4",
                             "--call", "dashfleet_web.app:create_app"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    assert set(_probe_pids(probe, 3)) == {str(proc.pid)}
    r = requests.post(f"http://127.0.0.1:{port}/api/fleet/report", headers={"Authorization": "Bearer w"},
                      json=[{"machine_id": "pc-1", "seq": 1}, {"machine_id": "pc-2", "seq": 1}], timeout=5)
    assert r.status_code == 200 and r.json()["stored"] == 2
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
