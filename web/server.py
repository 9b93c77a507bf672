"""The HTTP server behind `dashfleet web`: waitress, with DashFleet's limits.

Why waitress: its one I/O thread reads every request (headers and body; a big body spills to a
temporary file) before a worker thread runs the app, so a client trickling bytes costs a socket and
a buffer, never a worker. It is pure Python and runs the same on Linux and Windows. What waitress
lacks is a bound on how long one request may take to arrive: `_DeadlineChannel` adds it, so slow
connections give their slot back and `connection_limit` is not held for ever.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.utilities import Error

from dashfleet_core.config import ServerSettings

from .access_log import AccessLog

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024  # request line and headers; a browser or an agent sends under 8 KiB
# select() on Windows handles at most 512 sockets; Linux uses poll(), which has no such cap.
WINDOWS_CONNECTION_CAP = 500
_STOP_WAIT_SECONDS = 5.0  # requests already running when asked to stop get this long to finish


class RequestTimeout(Error):
    code = 408
    reason = "Request Timeout"


class _DeadlineChannel(HTTPChannel):
    """A connection whose request in progress must arrive whole within `request_timeout`.

    waitress's own `channel_timeout` only closes connections that went quiet: a client sending one
    byte a second stays. Here the clock starts at a request's first byte; past the deadline the
    client gets 408 and the connection is closed. Checked from `readable()`, which the I/O loop
    asks every channel at least once per loop timeout (1 s)."""

    request_timeout = 30.0  # replaced per server by `_channel_class`
    _partial: object | None = None  # the parser of the request being received
    _partial_since = 0.0

    def received(self, data: bytes) -> bool:
        result = super().received(data)
        if self.request is not None and self.request is not self._partial:
            self._partial, self._partial_since = self.request, time.monotonic()
        elif self.request is None:
            self._partial = None
        return result

    def readable(self) -> bool:
        if (self.request is not None and self.request is self._partial and not self.will_close
                and time.monotonic() - self._partial_since > self.request_timeout):
            self._expire()
            return False
        return super().readable()

    def _expire(self) -> None:
        """Answer 408 (after any earlier requests on this connection) and close."""
        with self.requests_lock:
            partial, self.request, self._partial = self.request, None, None
            partial.close()
            answer = self.parser_class(self.adj)
            answer.parse_header(b"GET / HTTP/1.0\r\n")
            answer.error = RequestTimeout(
                f"the request did not arrive whole within {self.request_timeout:g} s "
                "([server] request_timeout_seconds); send it again")
            answer.completed = True
            self.requests.append(answer)
            if len(self.requests) == 1:
                self.server.add_task(self)
        log.info("closed a connection from %s: its request took over %g s to arrive",
                 self.addr[0] if isinstance(self.addr, tuple) else self.addr, self.request_timeout)


def _channel_class(request_timeout: float) -> type[_DeadlineChannel]:
    return type("DeadlineChannel", (_DeadlineChannel,), {"request_timeout": request_timeout})


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv4 or IPv6 as the address says); raises OSError."""
    family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    return socket.create_server((host, port), family=family, backlog=1024)


class HttpServer:
    """waitress serving one WSGI app on one socket, started and stopped by its host.

    `serve_forever()` runs the I/O loop (in the caller's thread); `shutdown()` may be called from
    any other thread: it stops accepting, lets running requests finish (up to 5 s), closes every
    connection and makes `serve_forever()` return."""

    def __init__(self, app, settings: ServerSettings) -> None:
        limit = settings.connection_limit
        if os.name == "nt" and limit > WINDOWS_CONNECTION_CAP:
            log.warning("[server] connection_limit %d is over what select() handles on Windows; using %d",
                        limit, WINDOWS_CONNECTION_CAP)
            limit = WINDOWS_CONNECTION_CAP
        self._socket = listen_socket(settings.host, settings.port)
        self._map: dict = {}
        try:
            self._server: BaseWSGIServer = create_server(
                AccessLog(app),
                map=self._map,
                sockets=[self._socket],
                threads=settings.threads,
                connection_limit=limit,
                channel_timeout=settings.idle_timeout_seconds,
                cleanup_interval=max(1, min(30, int(settings.idle_timeout_seconds / 2))),
                max_request_header_size=MAX_HEADER_BYTES,
                # Twice the app's own limit: a body a little over it reaches the app, whose 413 says
                # what to do in JSON; a far bigger one is refused before it is read.
                max_request_body_size=2 * settings.max_body_bytes,
                asyncore_use_poll=True,  # ignored where there is no poll() (Windows)
                ident="",  # no Server header: nothing to fingerprint
                # X-Forwarded-* reach the app only when [server] trusted_proxies names proxies: the
                # app then believes them hop by hop from its trusted peers (web/client_address.py);
                # with none named they are dropped here.
                clear_untrusted_proxy_headers=not settings.trusted_proxies,
            )
        except BaseException:
            self._socket.close()
            raise
        self._server.channel_class = _channel_class(settings.request_timeout_seconds)
        self.port: int = int(self._server.effective_port)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            self._server.run()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        server, dispatcher = self._server, self._server.task_dispatcher
        server.trigger.pull_trigger(self._stop_accepting)
        dispatcher.shutdown(cancel_pending=True, timeout=_STOP_WAIT_SECONDS)
        closing = threading.Event()

        def close_everything() -> None:  # the trigger's pipe too: the loop ends with an empty map
            closing.set()
            wasyncore.close_all(self._map, ignore_all=True)

        try:
            server.trigger.pull_trigger(close_everything)
        except OSError:
            # pull_trigger queues the thunk, then writes to the pipe to wake the loop. A loop that
            # was awake anyway (a finished request woke it) can run the thunk in between, closing
            # the pipe under that write: the work is done, the failed wake-up is harmless.
            if not closing.is_set():
                raise
        if not self._stopped.wait(_STOP_WAIT_SECONDS):
            log.warning("the HTTP loop did not stop within %g s", _STOP_WAIT_SECONDS)

    def _stop_accepting(self) -> None:
        """Run in the I/O thread: close the listening socket and the connections with no request
        running (idle, or still sending: nobody is working for them)."""
        self._server.accepting = False
        wasyncore.dispatcher.close(self._server)
        for channel in list(self._server.active_channels.values()):
            if not channel.requests:
                channel.handle_close()
