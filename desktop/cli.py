"""`dashfleet desktop` (and `dashfleet-desktop`, the same command on its own): this machine's live
view and self-service actions in a window.

The desktop host contributes this command to `dashfleet` through the `dashfleet.commands` entry
points (the core never imports a host). Only click is imported at module level: tkinter loads when
the command runs, so `dashfleet --help` works on a machine without Tk.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click

from dashfleet_core.cli import config_option, load_context

log = logging.getLogger("dashfleet_desktop")


class NoDisplay(click.ClickException):
    exit_code = 3


@click.command()
@click.option("--interval", type=click.FloatRange(min=0.1), default=None,
              help="Seconds between refreshes (default: [desktop] interval, 2).")
@click.option("--lang", "language", type=click.Choice(["en", "fr", "es", "ru"]), default=None,
              help="Language of the window (default: [desktop] language, else the system's, else English).")
@config_option
def desktop(interval: float | None, language: str | None, config_path: str | None) -> None:
    """Open the desktop window: live CPU, memory, disk, uptime, health, history chart, CSV export,
    this machine's allowed actions and the local agent's state."""
    ctx = load_context(config_path, **{"desktop.interval": interval, "desktop.language": language})
    sys.exit(run_desktop(ctx))


def run_desktop(ctx) -> int:
    """Build the window on the loaded settings and run it until it is closed (or SIGTERM/SIGINT)."""
    window = build_window(ctx)

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        window.stop_requested = True   # poll() closes the window on the Tk thread

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    window.feed.start()
    log.info("desktop window open: refreshing every %g s", ctx.settings.desktop.interval)
    try:
        window.root.mainloop()
    finally:
        window.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def build_window(ctx):
    """The window and its feed on `ctx`'s settings and plugins, not started yet (`feed.start()`).

    Raises NoDisplay (exit 3) when Tk is missing or no display can be opened."""
    try:
        import tkinter as tk
    except ImportError as exc:
        raise NoDisplay(f"tkinter is not available ({exc}): install your Python's Tk support "
                        "(Debian/Ubuntu: apt-get install python3-tk)") from None
    from dashfleet_agent.paths import default_state_dir, status_file_for
    from dashfleet_agent.status_file import read as read_status
    from dashfleet_core.engine import Engine
    from dashfleet_core.exporting import exporters

    from .export import default_export_path
    from .feed import Feed
    from .i18n import system_language
    from .window import DesktopWindow

    settings = ctx.settings
    d = settings.desktop
    try:
        root = tk.Tk(className="DashFleet")
    except tk.TclError as exc:
        raise NoDisplay(f"cannot open a window: {exc} (no display: set DISPLAY, or run in a desktop "
                        "session)") from None
    agent = settings.agent
    state_dir = Path(agent.state_dir).expanduser() if agent.state_dir else default_state_dir()
    status_path = status_file_for(agent.status_file, state_dir)
    feed = Feed(Engine(settings, ctx.pm), d.interval, status_path, read_status)
    return DesktopWindow(
        root, feed, settings=settings, pm=ctx.pm, language=d.language or system_language(),
        export_path=default_export_path(d.export_path), exporter=exporters(ctx.pm, settings).get("csv"),
        status_path=status_path, history_minutes=d.history_minutes)


def main(argv: list[str] | None = None) -> None:
    """`dashfleet-desktop`: the window alone (the one-file binary's entry point)."""
    from dashfleet_core.cli import run_program

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_program(desktop, list(sys.argv[1:] if argv is None else argv), "dashfleet-desktop",
                help_option_names=["-h", "--help"])
