"""`HttpServer.shutdown()` against waitress's own wake-up race: the thunk that closes everything
(the trigger's pipe included) can run in the I/O thread before `pull_trigger`'s write reaches the
pipe. That write then fails with EBADF; shutdown must still finish cleanly (it exited `dashfleet
web` with status 1 on SIGTERM, seen once in CI)."""

from __future__ import annotations

import threading

import requests

from dashfleet_core.config import ServerSettings
from dashfleet_web.server import HttpServer


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _serving() -> tuple[HttpServer, threading.Thread]:
    server = HttpServer(_app, ServerSettings(host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=5).text == "ok"
    return server, thread


def test_shutdown_finishes_when_the_loop_closes_the_pipe_before_the_wake_up_write():
    server, thread = _serving()
    trigger = server._server.trigger
    real_pull = trigger._physical_pull
    pulls = []

    def pull_after_the_loop_ran_the_thunks() -> None:
        pulls.append(1)
        if len(pulls) == 2:  # the close-everything thunk: let the loop run it first
            real_pull()  # wakes the loop, as a finished request would
            assert _closed_within(trigger, 10)
        real_pull()  # EBADF once the pipe is closed

    trigger._physical_pull = pull_after_the_loop_ran_the_thunks
    server.shutdown()
    thread.join(10)
    assert len(pulls) == 2 and trigger._closed and not thread.is_alive()


def _closed_within(trigger, seconds: float) -> bool:
    pause = threading.Event()
    for _ in range(int(seconds * 100)):
        if trigger._closed:
            return True
        pause.wait(0.01)
    return False


def test_shutdown_stops_accepting_and_ends_the_loop():
    server, thread = _serving()
    port = server.port
    server.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
        answered = True
    except requests.ConnectionError:
        answered = False
    assert not answered
