"""Benchmark the one-file executables: size, start-up, memory.

Run from the repo root after `scripts/build_binaries.sh` (whatever it built is measured):

    .venv/bin/python bench/binaries.py [--rounds 5]

Figures, each beside a baseline from the same run (the machine is shared, absolute numbers drift):
- the size of dist/dashfleet, dist/dashfleet-agent and dist/dashfleet-desktop (when built);
- `--help` wall time of each binary against the same command from the venv (`dashfleet --help`,
  `dashfleet-agent --help`), medians: the one-file binary unpacks itself at every start;
- `dist/dashfleet web` from start to the first /healthz answer against `dashfleet web` from the venv,
  and the steady RSS of both after 15 s (the binary: bootloader and Python child together).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
VENV_BIN = Path(sys.executable).parent
TOKEN = "operator-token-of-the-binaries-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wall(cmd: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _tree_rss(pid: int) -> int:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


def _serve(cmd: list[str], folder: Path) -> tuple[float, int]:
    """Seconds to the first /healthz answer and the RSS 15 s later, of `cmd web` in `folder`."""
    port = _free_port()
    (folder / "dashfleet.toml").write_text(f'[storage]\nurl = "sqlite:///{folder}/d.db"\n[server]\ndata_dir = "{folder}"\n')
    env = {"HOME": str(folder), "ACTION_TOKEN": TOKEN, "PATH": os.environ.get("PATH", "")}
    start = time.perf_counter()
    proc = subprocess.Popen([*cmd, "web", "--port", str(port)], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        ready = time.perf_counter() - start
        time.sleep(15)
        return ready, _tree_rss(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    built = {name: DIST / name for name in ("dashfleet", "dashfleet-agent", "dashfleet-desktop")
             if (DIST / name).is_file()}
    if not built:
        sys.exit("nothing in dist/: run scripts/build_binaries.sh first")
    for name, path in built.items():
        print(f"{name:18} {path.stat().st_size / 1e6:6.1f} MB")
    for name, venv_cmd in (("dashfleet", [str(VENV_BIN / "dashfleet")]),
                           ("dashfleet-agent", [str(VENV_BIN / "dashfleet-agent")])):
        if name in built:
            binary = _wall([str(built[name]), "--help"], args.rounds)
            venv = _wall([*venv_cmd, "--help"], args.rounds)
            print(f"{name} --help: binary {binary:.2f} s, venv {venv:.2f} s (median of {args.rounds})")
    if "dashfleet" in built:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            b_ready, b_rss = _serve([str(built["dashfleet"])], Path(a))
            v_ready, v_rss = _serve([str(VENV_BIN / "dashfleet")], Path(b))
        print(f"web to first /healthz: binary {b_ready:.2f} s, venv {v_ready:.2f} s")
        print(f"web RSS after 15 s:   binary {b_rss / 1e6:.1f} MB (bootloader + child), venv {v_rss / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
