"""The `dashfleet` command line: a click group whose commands come from three places.

- The core's own commands: each module here has `add_commands(cli)`.
- Hosts' commands (`dashfleet web`, `dashfleet agent`, a third-party host's): entry points of the
  `dashfleet.commands` group, each a click command named like its entry point. The core never
  imports a host; hosts import `config_option` and `load_context` from here.
- Plugins' commands: the `register_commands` hook, called once the config is loaded.

Commands import what they need inside their bodies, so `dashfleet status` never imports Flask.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from importlib.metadata import entry_points

import click

from ..config import ConfigError
from ._context import Context
from ._context import load as load_context

__all__ = ["COMMANDS_GROUP", "Context", "cli", "config_option", "load_context", "main"]

# Entry-point group through which a host contributes its commands (see docs/plugin-hooks.md).
COMMANDS_GROUP = "dashfleet.commands"

# The commands added from COMMANDS_GROUP, by name: `main` may run more than once in a process.
_from_hosts: dict[str, click.Command] = {}

log = logging.getLogger("dashfleet")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $DASHFLEET_CONFIG, else ./dashfleet.toml if present, else built-in defaults).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.version_option(package_name="dashfleet", prog_name="dashfleet")
def cli(verbose: int) -> None:
    """DashFleet: fleet health for small and medium IT teams."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _add_builtin_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
            module.add_commands(cli)
        except Exception as exc:  # one broken command module must not take every command down
            log.error("dashfleet: the %r commands are unavailable: %s: %s", info.name,
                      type(exc).__name__, exc)


def _add_host_commands() -> None:
    """Hosts' commands, present whatever the config says (so `dashfleet web --config bad.toml`
    reports the config error). One that cannot be loaded, is no click command or takes a name
    already in use is logged and left out; the rest of the command line works."""
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        where = f"{ep.value} ({ep.dist.name if ep.dist else 'unknown package'})"
        existing = cli.commands.get(ep.name)
        if existing is not None and existing is not _from_hosts.get(ep.name):
            log.error("dashfleet: the %r command from %s is left out: a command of that name exists",
                      ep.name, where)
            continue
        try:
            command = ep.load()
        except Exception as exc:  # one broken host must not take every command down
            log.error("dashfleet: the %r command from %s is unavailable: %s: %s", ep.name, where,
                      type(exc).__name__, exc)
            continue
        if not isinstance(command, click.Command):
            log.error("dashfleet: the %r command from %s is left out: %s is not a click command",
                      ep.name, where, type(command).__name__)
            continue
        cli.add_command(command, ep.name)
        _from_hosts[ep.name] = command


def _add_plugin_commands(argv: list[str]) -> None:
    """Let plugins add commands; the config may come from `--config` anywhere in argv."""
    from ..plugins import call_each
    from . import _context

    path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    try:
        ctx = _context.preload(path)
    except ConfigError:
        return  # the command itself reports the problem with its exit code
    # a broken plugin is logged and left out; `config check` reports it again
    ctx.command_failures = call_each(ctx.pm, "register_commands", {"cli": cli, "settings": ctx.settings})


def run_program(command: click.Command, argv: list[str], prog_name: str, **extra) -> None:
    """Run a click command as a program of its own (`dashfleet`, `dashfleet-agent`,
    `dashfleet-desktop`): a configuration problem is one line and its exit code (2), Ctrl-C 130,
    click's usage errors as click shows them, and a command's non-zero return its exit code."""
    try:
        # Without standalone mode click returns ctx.exit(code)'s code instead of exiting.
        rc = command.main(args=argv, prog_name=prog_name, standalone_mode=False, **extra)
    except ConfigError as exc:
        click.echo(f"{prog_name}: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(rc, int) and not isinstance(rc, bool) and rc:
        sys.exit(rc)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    _add_builtin_commands()
    _add_host_commands()
    try:
        _add_plugin_commands(argv)  # a plugin's ConfigError in register_commands: exit 2 too
    except ConfigError as exc:
        click.echo(f"dashfleet: {exc}", err=True)
        sys.exit(exc.exit_code)
    run_program(cli, argv, "dashfleet")
