"""Benchmark the desktop app: its CPU per refresh against a bare Tk window, and its steady RSS
beside the agent's.

Run from the repo root with the project's venv (it starts its own Xvfb when DISPLAY is unset):

    .venv/bin/python bench/desktop.py                      # 120 s window, 2 s refresh (the default)
    .venv/bin/python bench/desktop.py --seconds 300 --collectors all
    .venv/bin/python bench/desktop.py --warmup 630 --seconds 300 --rounds 5   # full chart history

Three processes run side by side over the same window, so machine load hits them alike:
- the real `python -m dashfleet_desktop` (the engine collecting on its scheduler, the window
  polling its queue every 100 ms), with the core four collectors (cpu, memory, disk, uptime: the
  widgets' data) or, with `--collectors all`, every built-in one;
- bench/bare_tk_window.py: a bare Tk window updating the same widgets from raw psutil at the
  same interval (no engine, no plugins, no scheduler thread);
- a real `python -m dashfleet_agent` at its 10 s interval against a local receiver (the way
  bench/agent.py measures it), for the RSS comparison.
CPU per refresh = the process's CPU time over the window / the refreshes in it; the figure
to read is the ratio desktop / bare (goal <= 1.5x). With `--rounds N` the window is cut into N
rounds, each with its own ratio, and the median is printed too.

Both windows keep a chart of the last 10 minutes (the desktop's default history, the bare
window's 300 samples at 2 s), and both redraw every point of it at each refresh, so the cost per
refresh grows until the history is full: the default 15 s warm-up measures that growth; a
warm-up of 10 minutes and more (`--warmup 630`) measures the steady state.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from agent import clean_env, mb, start_agent, start_receiver, stop  # noqa: E402  (bench/agent.py)

CORE_FOUR = ["cpu", "memory", "disk", "uptime", "thresholds", "csv"]


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as fh:
        return proc, ":" + fh.readline().strip()


def cpu_seconds(p: psutil.Process) -> float:
    """The process's CPU time: on Linux the scheduler's run time of every thread (nanoseconds,
    /proc/PID/task/*/schedstat), else user+system times (ticks of 10 ms: too coarse for rounds)."""
    try:
        tasks = os.listdir(f"/proc/{p.pid}/task")
    except OSError:
        t = p.cpu_times()
        return t.user + t.system
    total = 0
    for tid in tasks:
        try:
            with open(f"/proc/{p.pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that just ended
            continue
    return total / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120, help="measuring window (default 120)")
    ap.add_argument("--interval", type=float, default=2, help="refresh interval of both windows (default 2)")
    ap.add_argument("--collectors", choices=["core", "all"], default="core")
    ap.add_argument("--warmup", type=float, default=15, help="seconds before measuring (default 15)")
    ap.add_argument("--rounds", type=int, default=1, help="cut the window into rounds (default 1)")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {psutil.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    tmp = Path(tempfile.mkdtemp(prefix="dashfleet-bench-desktop-"))
    xvfb = None
    env = clean_env()
    if not env.get("DISPLAY"):
        xvfb, env["DISPLAY"] = start_xvfb()
    cfg = tmp / "desktop.toml"
    enabled = f"[plugins]\nenabled = {CORE_FOUR!r}\n".replace("'", '"') if args.collectors == "core" else ""
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp / "db.sqlite"}"\n[agent]\nstatus_file = "{tmp / "status.json"}"\n'
                   + enabled)
    srv = start_receiver()
    procs = {
        "desktop": subprocess.Popen([sys.executable, "-m", "dashfleet_desktop", "--config", str(cfg),
                                     "--interval", str(args.interval), "--lang", "en"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "bare Tk": subprocess.Popen([sys.executable, str(HERE / "bare_tk_window.py"), str(args.interval)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "agent": start_agent(tmp / "agent-state", f"http://127.0.0.1:{srv.server_address[1]}", 10),
    }
    try:
        handles = {name: psutil.Process(p.pid) for name, p in procs.items()}
        time.sleep(args.warmup)  # start-up and the first refreshes are not steady state
        for name, p in procs.items():
            if p.poll() is not None:
                raise SystemExit(f"{name} exited early with {p.returncode}")
        t0 = time.monotonic()
        c0 = {name: cpu_seconds(h) for name, h in handles.items()}
        rss: dict[str, list[int]] = {name: [] for name in handles}
        marks = [(t0, dict(c0))]   # (time, CPU seconds per process) at each round's end
        for r in range(1, args.rounds + 1):
            while time.monotonic() - t0 < args.seconds * r / args.rounds:
                time.sleep(min(5, args.seconds / args.rounds))
                for name, h in handles.items():
                    rss[name].append(h.memory_info().rss)
            marks.append((time.monotonic(), {name: cpu_seconds(h) for name, h in handles.items()}))
        wall = time.monotonic() - t0
        cpu = {name: cpu_seconds(h) - c0[name] for name, h in handles.items()}
    finally:
        for name, p in procs.items():
            stop(p)
        srv.shutdown()
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    refreshes = wall / args.interval
    per = {name: cpu[name] / refreshes for name in ("desktop", "bare Tk")}
    which = "core four collectors" if args.collectors == "core" else "all built-in collectors"
    print(f"{wall:.0f} s window, refresh every {args.interval:g} s ({refreshes:.0f} refreshes), desktop with {which}:")
    print(f"  CPU per refresh: desktop {per['desktop'] * 1e3:.2f} ms, bare Tk + raw psutil "
          f"{per['bare Tk'] * 1e3:.2f} ms = {per['desktop'] / per['bare Tk']:.2f}x (goal <= 1.5x)")
    if args.rounds > 1:
        ratios = []
        for (ta, ca), (tb, cb) in zip(marks, marks[1:]):
            d, b = cb["desktop"] - ca["desktop"], cb["bare Tk"] - ca["bare Tk"]
            ratios.append(d / b if b else float("inf"))
            n = (tb - ta) / args.interval
            print(f"    round {len(ratios)}: desktop {d / n * 1e3:.2f} ms, bare Tk {b / n * 1e3:.2f} ms = {ratios[-1]:.2f}x")
        print(f"  median of the {len(ratios)} rounds' ratios: {statistics.median(ratios):.2f}x")
    print(f"  CPU over the window: desktop {100 * cpu['desktop'] / wall:.3f} %, bare Tk "
          f"{100 * cpu['bare Tk'] / wall:.3f} %, agent {100 * cpu['agent'] / wall:.3f} % of one core")
    for name in ("desktop", "bare Tk", "agent"):
        values = rss[name]
        print(f"  steady RSS {name:<8} median {mb(statistics.median(values))} (min {mb(min(values))}, "
              f"max {mb(max(values))}, {len(values)} samples)")
    print(f"  desktop - agent: {mb(statistics.median(rss['desktop']) - statistics.median(rss['agent']))}; "
          f"desktop - bare Tk: {mb(statistics.median(rss['desktop']) - statistics.median(rss['bare Tk']))}")


if __name__ == "__main__":
    main()
