"""`dashfleet web`: the server in one process, no child processes. It serves the pages and the API
(waitress, see dashfleet_web.server: slow clients cost a socket, not a worker), runs the server's
scheduled jobs, reports its own machine into the fleet, and exits promptly on SIGTERM or Ctrl-C.
For more cores: gunicorn on `dashfleet_web.app:create_app()` behind a buffering nginx (docs/deploy.md).

The web host contributes this command to `dashfleet` through the `dashfleet.commands` entry points
(the core never imports a host). Only click is imported here: Flask loads when the command runs.
"""

from __future__ import annotations

import logging
import signal
import threading

import click

from dashfleet_core.cli import config_option, load_context


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: $HOST, [server] host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: $PORT, [server] port, 5000).")
@config_option
def web(host: str | None, port: int | None, config_path: str | None) -> None:
    """Run the DashFleet server: dashboard, report API and the server's jobs."""
    from dashfleet_core.fleet import Fleet

    from .app import create_app
    from .server import HttpServer
    from .token_file import token_path

    ctx = load_context(config_path, **{"server.host": host, "server.port": port})
    settings = ctx.settings
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        # waitress warns "Task queue depth is N" for every request that waits for a thread: a flood
        # under load. With -v it shows; /metrics has the request rates either way.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    fleet = Fleet(settings, ctx.pm)
    token_was_stored = token_path(settings).exists()
    app = create_app(fleet=fleet, start=False)  # generates the token file when there is none, and says so
    try:
        server = HttpServer(app, settings.server)
    except OSError as exc:
        fleet.stop()
        raise click.ClickException(
            f"cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}; "
            "pick another with --port or $PORT") from None
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    fleet.start()
    from .first_admin import announce

    announce(fleet, server.port)
    thread = threading.Thread(target=server.serve_forever, name="dashfleet-http", daemon=True)
    thread.start()
    url = f"http://{settings.server.host}:{server.port}/"
    click.echo(f"DashFleet server on {url}  (fleet: {url}fleet; storage {settings.storage.url})")
    if settings.server.token:
        click.echo("Agents authenticate with FLEET_TOKEN as configured.")
    elif token_was_stored:  # a new token file was announced by its creator (a warning) already
        click.echo(f"FLEET_TOKEN is not set: agents must send the token stored in "
                   f"{token_path(settings).resolve()} (readable by this user only).")
    click.echo("Stop with Ctrl-C or SIGTERM.", nl=True)
    try:
        while not stop.wait(0.5):
            if not thread.is_alive():
                break
    finally:
        server.shutdown()
        fleet.stop()
        click.echo("DashFleet server stopped.")
