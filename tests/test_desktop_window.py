"""The real desktop window on a real X server (Debian's Xvfb): it opens, shows values that change,
exports a CSV, runs a dry-run action through the audit, switches language, shows the local agent's
state, collects off the Tk thread, and stops cleanly when closed or sent SIGTERM.

Skipped with a reason where Tk or Xvfb is missing; DASHFLEET_REQUIRE_DESKTOP=1 (CI sets it) makes
that a failure. The screenshot goes to docs/screenshots/desktop.png with DASHFLEET_SCREENSHOTS=1.
"""

from __future__ import annotations

import csv
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import dashfleet_cmd

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "docs" / "screenshots"


def _missing() -> str | None:
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return "tkinter is missing: apt-get install python3-tk (it must match this Python)"
    if not shutil.which("Xvfb"):
        return "Xvfb is missing: apt-get install xvfb (scripts/test.sh does it as root)"
    return None


@pytest.fixture(scope="module")
def xdisplay():
    """A private X server for this module's windows; its display name (`:N`)."""
    reason = _missing()
    if reason:
        if os.environ.get("DASHFLEET_REQUIRE_DESKTOP") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as fh:
        number = fh.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb started but did not give a display number", pytrace=False)
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(30)


def pump(root, until, limit: float = 60.0) -> None:
    """Run the Tk loop until `until()` holds; a generous limit only guards against a hang."""
    deadline = time.monotonic() + limit
    while not until():
        assert time.monotonic() < deadline, "the window did not get there"
        root.update()
        time.sleep(0.02)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "desktop.toml"
    cfg.write_text(f"""
[storage]
url = "sqlite:///{tmp_path / 'dashfleet.db'}"
[health]
sustain = 1
[health.thresholds."cpu.percent"]
warn = 0
critical = 101
[desktop]
interval = 0.3
history_minutes = 0.5
language = "en"
export_path = "{tmp_path / 'exports' / 'metrics_desktop.csv'}"
[actions]
allowed = ["cleanup_temp", "collect_logs"]
[agent]
status_file = "{tmp_path / 'agent-status.json'}"
{extra}""")
    return cfg


@pytest.fixture(autouse=True)
def _free_tk_on_the_main_thread():
    """Tk objects must be freed on the thread that made them (else Tcl aborts the process). A
    window's cycles would otherwise wait for whichever thread runs the garbage collector next, in a
    later test an engine's or a server's: collect them here, after each test, on the main thread."""
    yield
    gc.collect()


@pytest.fixture
def window(xdisplay, tmp_path, monkeypatch, thread_probe):
    from dashfleet_core.cli import load_context
    from dashfleet_desktop.cli import build_window

    monkeypatch.setenv("DISPLAY", xdisplay)
    monkeypatch.syspath_prepend(str(tmp_path))  # the thread_probe collector module
    cfg = write_config(tmp_path, '[plugins]\nmodules = ["thread_probe"]\n')
    win = build_window(load_context(str(cfg)))
    win.feed.start()
    yield win
    win.close()


def _shot(root, name: str) -> Path:
    from PIL import ImageGrab

    folder = SHOTS if os.environ.get("DASHFLEET_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "dashfleet-shots"
    folder.mkdir(parents=True, exist_ok=True)
    root.update()
    x, y, w, h = root.winfo_rootx(), root.winfo_rooty(), root.winfo_width(), root.winfo_height()
    ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=os.environ["DISPLAY"]).save(folder / name)
    assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return folder / name


def test_the_window_shows_live_values_that_change_off_the_tk_thread(window, tmp_path):
    from dashfleet_desktop import view

    root = window.root
    seen = set()

    def changed_three_times():
        seen.add(window.updated_label.cget("text"))
        return window.snapshots >= 4 and len(seen - {window.t("live.waiting")}) >= 3

    pump(root, changed_three_times)
    report, health, status = window.last
    shown = view.reading(report, health, status, window.t, window.settings.health.thresholds)
    assert window.value_labels["cpu"].cget("text") == shown.values["cpu"] != "–"
    assert window.value_labels["uptime"].cget("text") == shown.values["uptime"]
    assert window.score_label.cget("text") == f"{health.score}/100"
    # CPU >= 0 % is a warning in this config: the status is coloured and the reason listed
    assert window.status_label.cget("text") == "Warning"
    assert window.status_label.cget("bg") == view.STATUS_COLOURS["warn"]
    assert "CPU at" in window.findings_label.cget("text")
    assert window.chart.find_withtag("cpu") and window.chart.find_withtag("ram")
    threads = set((tmp_path / "threads.txt").read_text().split())
    assert threads and "MainThread" not in threads      # collected on the engine's scheduler
    assert threading.current_thread().name == "MainThread"


def test_export_writes_the_chosen_file_and_only_new_rows(window, tmp_path):
    root = window.root
    pump(root, lambda: window.snapshots >= 3)
    target = tmp_path / "chosen" / "sub" / "mine.csv"
    window.export_path.set(str(target))
    window.export_button.invoke()
    rows = list(csv.reader(target.read_text(encoding="utf-8").splitlines()))
    assert rows[0][:3] == ["machine_id", "seq", "collected_at"] and len(rows) >= 4
    assert window.export_result.cget("text").startswith(f"{len(rows) - 1} snapshot(s) written to {target}")
    count = window.snapshots
    pump(root, lambda: window.snapshots > count)
    window.export_button.invoke()
    again = list(csv.reader(target.read_text(encoding="utf-8").splitlines()))
    seqs = [r[1] for r in again[1:]]
    assert len(again) > len(rows) and len(seqs) == len(set(seqs)) and seqs == sorted(seqs, key=int)
    assert window.export_path.get() == str(target)


def test_the_default_export_path_comes_from_the_config(window, tmp_path):
    assert window.export_path.get() == str(tmp_path / "exports" / "metrics_desktop.csv")


def test_a_dry_run_action_asks_confirmation_runs_and_is_audited(window, tmp_path):
    from dashfleet_core.storage import open_storage

    root = window.root
    assert [a.name for a in window.actions] == ["cleanup_temp", "collect_logs"]
    window.action_name.set("cleanup_temp")
    window._show_params()
    window.param_vars["older_than_days"].set("30")
    assert window.dry_run.get() is True                    # dry run is the default in the window
    window.run_button.invoke()
    assert window.confirm_frame.winfo_manager() == "pack"  # asks first
    assert "dry run" in window.confirm_label.cget("text")
    window.cancel_button.invoke()
    assert window.action_result.cget("text") == "Cancelled."
    window.run_button.invoke()
    window.confirm_button.invoke()
    pump(root, lambda: "(dry run)" in window.action_result.cget("text"))
    assert window.action_result.cget("text").startswith("cleanup_temp: done (dry run)")
    with open_storage(window.settings, window.pm) as storage:
        rows = storage.audit(limit=10)
    assert len(rows) == 1                                   # the cancelled one never ran
    assert rows[0].action == "cleanup_temp" and rows[0].outcome == "ok" and rows[0].actor.startswith("desktop:")
    assert rows[0].params == {"dry_run": True, "older_than_days": 30}


def test_a_bad_parameter_is_refused_before_anything_runs(window):
    window.action_name.set("cleanup_temp")
    window._show_params()
    window.param_vars["older_than_days"].set("soon")
    window.run_button.invoke()
    assert window.action_result.cget("text") == "older_than_days: a whole number is expected"
    assert window.confirm_frame.winfo_manager() == ""


def test_switching_language_retranslates_everything_shown(window):
    root = window.root
    pump(root, lambda: window.snapshots >= 1)
    window.export_button.invoke()
    menu = root.nametowidget(window.language_menu.cget("menu"))
    menu.invoke(menu.index("fr"))
    assert window.t.language == "fr" and root.title() == "DashFleet · cette machine"
    assert window.export_button.cget("text") == "Exporter en CSV"
    assert window.status_label.cget("text") == "Alerte"
    assert "Processeur à" in window.findings_label.cget("text")
    assert " relevé(s) écrit(s) dans " in window.export_result.cget("text")
    menu.invoke(menu.index("ru"))
    assert window.export_button.cget("text") == "Экспорт в CSV" and window.status_label.cget("text") == "Внимание"


def test_the_local_agent_state_is_shown(window, tmp_path):
    from dashfleet_agent.status_file import write

    root = window.root
    pump(root, lambda: "No agent status at" in window.agent_label.cget("text"))
    write(tmp_path / "agent-status.json", {
        "version": 1, "running": True, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "interval": 10, "server": "https://fleet.example.org", "spool_depth": 7, "dead_lettered": 2,
        "spool_dropped": 0, "last_delivery": None, "last_error": None})
    pump(root, lambda: "Waiting in the spool: 7" in window.agent_label.cget("text"))
    text = window.agent_label.cget("text")
    assert "State: running" in text and "Last delivery: never" in text and "Dead letters: 2" in text


def test_screenshot_of_the_window(window, tmp_path):
    from dashfleet_agent.status_file import write

    root = window.root
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write(tmp_path / "agent-status.json", {
        "version": 1, "running": True, "updated_at": now, "interval": 10, "server": "https://fleet.example.org",
        "spool_depth": 0, "dead_lettered": 0, "spool_dropped": 0, "last_delivery": {"at": now, "count": 1},
        "last_error": None})
    window.action_name.set("cleanup_temp")
    window._show_params()
    window.run_button.invoke()
    window.confirm_button.invoke()
    pump(root, lambda: len(window.history.samples) >= 12 and "(dry run)" in window.action_result.cget("text")
         and "running" in window.agent_label.cget("text"))
    window.export_path.set(str(Path("~/Desktop/metrics_desktop.csv").expanduser()))  # shown, not written
    path = _shot(root, "desktop.png")
    from PIL import Image

    with Image.open(path) as img:
        assert img.width >= 700 and img.height >= 500


def test_closing_the_window_stops_the_engine(xdisplay, tmp_path, monkeypatch):
    from dashfleet_core.cli import load_context
    from dashfleet_desktop.cli import build_window

    monkeypatch.setenv("DISPLAY", xdisplay)
    before = {t.ident for t in threading.enumerate()}
    win = build_window(load_context(str(write_config(tmp_path))))
    win.feed.start()
    pump(win.root, lambda: win.snapshots >= 2)
    closed = []
    win.on_closed = lambda: closed.append(True)
    win.root.tk.call(win.root.protocol("WM_DELETE_WINDOW"))  # what the window manager's close button runs
    assert closed == [True] and win.closed
    assert win.feed.engine._scheduler is None
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []


def test_dashfleet_desktop_runs_and_stops_on_sigterm(xdisplay, tmp_path, thread_probe):
    cfg = write_config(tmp_path, '[plugins]\nmodules = ["thread_probe"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHFLEET_", "FLEET_"))}
    env.update(DISPLAY=xdisplay, PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen(dashfleet_cmd() + ["desktop", "--config", str(cfg), "--interval", "0.2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        probe = tmp_path / "threads.txt"
        deadline = time.monotonic() + 90
        while not (probe.exists() and len(probe.read_text().split()) >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the desktop app never collected"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "MainThread" not in probe.read_text().split()


def test_without_a_display_it_says_so(tmp_path):
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("tkinter is missing")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "DASHFLEET_CONFIG")}
    done = subprocess.run(dashfleet_cmd() + ["desktop", "--config", str(write_config(tmp_path))], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "cannot open a window" in done.stderr and "DISPLAY" in done.stderr


def test_the_binary_entry_point_has_the_same_command():
    done = subprocess.run([sys.executable, "-m", "dashfleet_desktop", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "--interval" in done.stdout and "--lang" in done.stdout
