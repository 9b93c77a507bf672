"""`dashfleet web`: the server in one process, no child processes. It serves the pages and the API
(waitress, see dashfleet_web.server: slow clients cost a socket, not a worker), runs the server's
scheduled jobs, reports its own machine into the fleet, exports this machine's snapshots when asked
(`--export-csv/--export-jsonl`, as the original dashboard's `main.py --web`), and exits promptly on
SIGTERM or Ctrl-C.
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
from dashfleet_core.storage import redact_url


def _export_path(kind: str, value: str | None) -> str | None:
    """`--export-csv` given without a path writes to the Desktop (else home), as the original did."""
    if value != "":
        return value
    from dashfleet_core.exporting import default_export_path

    from .local_export import DEFAULT_NAMES

    return str(default_export_path(DEFAULT_NAMES[kind]))


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: $HOST, [server] host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: $PORT, [server] port, 5000).")
@click.option("--export-csv", "export_csv", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              type=click.Path(dir_okay=False),
              help="While serving, append a CSV row per snapshot of this machine to PATH (missing folders "
                   "are created); without PATH: metrics.csv on the Desktop, else in the home folder.")
@click.option("--export-jsonl", "export_jsonl", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              type=click.Path(dir_okay=False),
              help="The same as JSON lines; without PATH: metrics.jsonl on the Desktop, else home.")
@click.option("--export", "export", multiple=True, metavar="FORMAT:PATH",
              help="Append every snapshot of this machine to PATH with the exporter FORMAT (csv, jsonl "
                   "or a plugin's); repeatable.")
@click.option("--export-interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between exported snapshots.")
@config_option
def web(host: str | None, port: int | None, export_csv: str | None, export_jsonl: str | None,
        export: tuple[str, ...], export_interval: float, config_path: str | None) -> None:
    """Run the DashFleet server: dashboard, report API and the server's jobs."""
    from dashfleet_core.cli.watch import close_exports, export_targets, open_exports

    targets = export_targets(export, _export_path("csv", export_csv), _export_path("jsonl", export_jsonl))
    ctx = load_context(config_path, **{"server.host": host, "server.port": port})
    exports = open_exports(ctx, targets)  # a path that cannot be written stops here, before serving
    try:
        _serve(ctx, exports, export_interval)
    finally:
        close_exports(exports)  # after _serve stopped the engine: no snapshot is being written


def _serve(ctx, exports: list, export_interval: float) -> None:
    """Serve until SIGTERM or Ctrl-C, exporting this machine's snapshots to `exports` meanwhile."""
    from dashfleet_core.fleet import Fleet

    from .app import create_app
    from .local_export import LocalExport
    from .server import HttpServer
    from .token_file import token_path

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
    LocalExport(fleet.engine, fleet.self_machine_id, exports, export_interval).start()
    from .first_admin import announce

    announce(fleet, server.port)
    thread = threading.Thread(target=server.serve_forever, name="dashfleet-http", daemon=True)
    thread.start()
    url = f"http://{settings.server.host}:{server.port}/"
    click.echo(f"DashFleet server on {url}  (fleet: {url}fleet; storage {redact_url(settings.storage.url)})")
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
