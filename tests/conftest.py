"""Shared fixtures: real parts only (a free port on 127.0.0.1, PostgreSQL, SMTP, a webhook
receiver, Chromium). Area-specific fixtures live in the test module that uses them."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("DASHFLEET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-dev-shm-usage", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc, seconds: float = 60, what: str = "the server"):
    """The first answer of `url` from a server `proc` is starting. Fails if the process exits first
    or nothing answers within `seconds`; a refused connection or a slow first answer (a loaded
    machine, a one-file binary unpacking itself) is retried."""
    import time

    import requests

    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}: {proc.communicate()}"
        try:
            return requests.get(url, timeout=5)
        except requests.RequestException:
            assert time.monotonic() < deadline, f"{what} did not answer {url} within {seconds:g} s"
            time.sleep(0.2)


@contextlib.contextmanager
def serving(fleet):
    """The web app of `fleet` served by werkzeug (threaded) on a free port of 127.0.0.1, as its base
    URL; the server is shut down and the fleet stopped afterwards."""
    from werkzeug.serving import make_server

    from dashfleet_web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(fleet=fleet, start=False), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
        fleet.stop()


def dashfleet_cmd() -> list[str]:
    """The installed console script of the interpreter running the tests."""
    exe = Path(sys.executable).with_name("dashfleet")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dashfleet_core.cli"]


def registered(plugin, hook: str, settings):
    """The one object `plugin` (a module) registers through `hook` for `settings`: built-in
    plugins read their `[plugins.<name>]` table there, so this is how DashFleet configures them."""
    found = []
    getattr(plugin, hook)(lambda *args: found.append(args[-1]), settings)
    [obj] = found
    return obj


@pytest.fixture
def settings_factory(tmp_path):
    """Build validated Settings from a dict of overrides, with storage in tmp_path by default.

    Reads are open (`server.public_read`, the trusted-LAN mode) unless a test says otherwise: the
    feature tests read the `default` organisation as the original dashboard did, and the tests of
    credentials (test_access_*.py, test_org_isolation.py) turn it off, as the real default is."""
    from dashfleet_core.config import load_settings

    def make(overrides: dict | None = None, env: dict | None = None):
        base = {"storage.url": f"sqlite:///{tmp_path}/dashfleet.db", "server.data_dir": str(tmp_path),
                "server.public_read": True}
        base.update(overrides or {})
        return load_settings(None, env=env or {}, overrides=base)

    return make


# --- PostgreSQL ----------------------------------------------------------------------------------


def _start_throwaway_pg():
    """initdb + pg_ctl into a temp dir on 127.0.0.1:<free port>. Returns (dsn, stop) or (None, reason)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    initdb = bins[-1] if bins else shutil.which("initdb")
    if not initdb:
        return None, "no initdb found: apt-get install postgresql (or set DASHFLEET_PG_DSN)"
    bindir = os.path.dirname(initdb)
    tmp = tempfile.mkdtemp(prefix="dashfleet-pg-")
    as_pg = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(tmp, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = os.path.join(tmp, "data")
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    try:
        subprocess.run(as_pg + [f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust",
                                "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=60)
        subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-l", f"{tmp}/server.log", "-w",
                                "-t", "30", "-o", opts, "start"], check=True, capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return None, f"could not start a throwaway PostgreSQL: {e}"

    def stop():
        subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def pg_dsn():
    """DSN of a reachable PostgreSQL: $DASHFLEET_PG_DSN, else a throwaway server, else skip.
    With DASHFLEET_REQUIRE_PG=1 (CI sets it) a missing server fails instead of skipping."""
    reason = None
    try:
        import psycopg
    except ImportError:
        psycopg, reason = None, "psycopg not installed: pip install -e '.[test]'"
    dsn, stop = os.environ.get("DASHFLEET_PG_DSN"), None
    if psycopg is not None and not dsn:
        dsn, stop_or_reason = _start_throwaway_pg()
        if dsn is None:
            reason = stop_or_reason
        else:
            stop = stop_or_reason
    if psycopg is not None and dsn is not None:
        try:
            psycopg.connect(dsn, connect_timeout=3).close()
        except psycopg.OperationalError as e:
            reason = f"PostgreSQL not reachable at {dsn}: {str(e).strip().splitlines()[0]}"
    if reason:
        if stop:
            stop()
        if os.environ.get("DASHFLEET_REQUIRE_PG") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason + " (run scripts/test.sh, which starts one)")
    yield dsn
    if stop:
        stop()


@pytest.fixture
def pg_url(pg_dsn):
    """A storage URL for a fresh, empty PostgreSQL schema, dropped after the test."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_dsn else "?"
    yield f"{pg_dsn}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# --- SMTP and webhook receivers ------------------------------------------------------------------


@pytest.fixture
def smtp_server():
    """Real SMTP server in-process (aiosmtpd). Yields (host, port, received messages)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Capture(Message):
        def handle_message(self, message):
            received.append(message)

    ctl = Controller(Capture(), hostname="127.0.0.1", port=free_port())  # 1.4 cannot take port 0
    ctl.start()
    try:
        yield ctl.hostname, ctl.port, received
    finally:
        ctl.stop()


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        behaviour = self.server.behaviour
        if behaviour.get("block") is not None:
            behaviour["block"].wait(30)
        self.server.captured.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.server.got_one.set()
        status = behaviour.get("status", 200)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up waiting (a test of a hanging receiver): nothing to answer

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    """Real HTTP receiver on 127.0.0.1. `srv.captured` holds the POSTs; set
    `srv.behaviour["status"] = 500` or `srv.behaviour["block"] = threading.Event()` to misbehave."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    srv.daemon_threads = True
    srv.captured, srv.got_one, srv.behaviour = [], threading.Event(), {}
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        block = srv.behaviour.get("block")
        if block is not None:
            block.set()
        srv.shutdown()
        srv.server_close()
        t.join(5)


# --- browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_browser():
    """Debian's Chromium driven by Playwright (no `playwright install`). Skips without it, unless
    DASHFLEET_REQUIRE_BROWSER=1 (CI sets it)."""
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} not found: apt-get install chromium"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "playwright not installed: pip install -e '.[test]'"
    if reason:
        if os.environ.get("DASHFLEET_REQUIRE_BROWSER") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# --- a disk that fills up ------------------------------------------------------------------------


class SmallDisk:
    """A real filesystem of a few MiB (tmpfs) that a test fills and frees: writes there fail with
    ENOSPC as on a full disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self, leave: int = 0) -> None:
        """Take all the free space but `leave` bytes."""
        st = os.statvfs(self.path)
        with open(self.filler, "ab") as fh:
            fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs mounted for the test (needs root and permission to mount; skips otherwise)."""
    path = tmp_path / "small-disk"
    path.mkdir()
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a full-disk test mounts a small tmpfs: run as root on Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# --- actions -------------------------------------------------------------------------------------


@pytest.fixture(params=["fd", "paths"])
def walk_mode(request, monkeypatch):
    """Both ways `walk_owned` walks: by open folder descriptors (Linux, macOS) and by checked
    paths (Windows, forced here); for the tests of the owned-folder helpers and their docs."""
    from dashfleet_core.actions import files

    if request.param == "paths":
        monkeypatch.setattr(files, "FD_WALK", False)
    elif not files.FD_WALK:
        pytest.skip("this OS has no descriptor-relative file calls")
    return request.param


@pytest.fixture
def thread_probe(tmp_path):
    """A collector plugin (module `thread_probe` in tmp_path, listed in the returned config) that
    writes the name of the thread calling it to `threads.txt`: which thread a host collects on.
    Run the host with PYTHONPATH=tmp_path."""
    (tmp_path / "thread_probe.py").write_text(
        "import threading\n"
        "from dashfleet_core import hookimpl, Reading\n"
        f"LOG = {str(tmp_path / 'threads.txt')!r}\n"
        "class Probe:\n"
        "    name = 'thread_probe'\n"
        "    metrics = []\n"
        "    def collect(self):\n"
        "        with open(LOG, 'a') as fh:\n"
        "            fh.write(threading.current_thread().name + '\\n')\n"
        "        return Reading()\n"
        "@hookimpl\n"
        "def register_collectors(register):\n"
        "    register(Probe())\n")
    config = tmp_path / "probe.toml"
    config.write_text('[plugins]\nmodules = ["thread_probe"]\n')
    return config
