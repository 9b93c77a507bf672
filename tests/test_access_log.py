"""The access log of `dashfleet -v web` (web/access_log.py), from a real server: one line per
request, query strings left out, and what the client put in the path escaped."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import requests

from conftest import dashfleet_cmd, free_port


def test_access_log_escapes_the_path_and_leaves_query_strings_out(tmp_path):
    port = free_port()
    (tmp_path / "dashfleet.toml").write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/dashfleet.db"\n\n[server]\ndata_dir = "{tmp_path}"\nreport_self = false\n')
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "DASHFLEET_CONFIG", "DASHFLEET_STORAGE")}
    env["FLEET_TOKEN"] = "t"
    log = tmp_path / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(dashfleet_cmd() + ["-v", "web", "--port", str(port), "--config",
                                                   str(tmp_path / "dashfleet.toml")],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.RequestException:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert requests.get(f"{base}/healthz?key=sekret-in-query", timeout=5).status_code == 200
        assert requests.get(f"{base}/nope%0A127.0.0.1%20forged%1b[31m", timeout=5).status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in text
    assert "sekret-in-query" not in text
    assert '"GET /nope\\x0a127.0.0.1 forged\\x1b[31m HTTP/1.1" 404' in text, text
    assert "\x1b" not in text and not any(line.startswith("127.0.0.1 forged") for line in text.splitlines())
