"""`dashfleet agent` (run the agent host) and `dashfleet agent status`; `dashfleet-agent` (binary.py)
runs the same group on its own.

The agent host contributes this group to `dashfleet` through the `dashfleet.commands` entry points
(the core never imports a host).

Every flag can also come from the environment (DASHFLEET_AGENT_*; the token also from FLEET_TOKEN,
as in the seed) and from the config file's `[agent]` table. Precedence: flag, then environment,
then config file, then default. The config file is `--config`, `$DASHFLEET_CONFIG`, else
`dashfleet-agent.toml` beside a frozen agent binary or in the working folder (what an enrolling
download link hands out), else `./dashfleet.toml`. The token and the token file are one setting in two forms: the
first place that gives either wins, and one place giving both is an error. Flags and environment
reach the settings as `load_settings` overrides, like every other command's; the agent then runs on
`AgentSettings` itself. Heavy imports stay inside the commands; nothing here imports Flask.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from dashfleet_core.cli import Context, load_context
from dashfleet_core.config import AGENT_CONFIG_FILE, UNSET, AgentSettings, find_agent_config_file

# The agent's config lookup differs from the server's: an enrolled agent's file lies beside it.
agent_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help=f"Config file (default: $DASHFLEET_CONFIG, else {AGENT_CONFIG_FILE} beside the agent binary or in "
         f"the working folder, else ./dashfleet.toml if present, else built-in defaults).")


def _config_file(config_path: str | None) -> str | None:
    found = find_agent_config_file(config_path)
    return str(found) if found is not None else None


def _resolve_state_dir(flag: str | None, configured: str | None) -> Path:
    from .paths import default_state_dir

    value = flag or configured
    return Path(value).expanduser() if value else default_state_dir()


@click.group(invoke_without_command=True)
@click.option("--server", envvar="DASHFLEET_AGENT_SERVER", default=None,
              help="Server base URL, e.g. https://dashfleet.example.org [env DASHFLEET_AGENT_SERVER; [agent] server].")
@click.option("--token-file", envvar="DASHFLEET_AGENT_TOKEN_FILE", default=None, metavar="PATH",
              help="File whose first line is the server's fleet token; keeps the token out of `ps` "
                   "(preferred) [env DASHFLEET_AGENT_TOKEN_FILE; [agent] token_file].")
@click.option("--token", envvar=["DASHFLEET_AGENT_TOKEN", "FLEET_TOKEN"], default=None,
              help="The server's fleet token; visible in `ps`, prefer --token-file "
                   "[env DASHFLEET_AGENT_TOKEN or FLEET_TOKEN; [agent] token].")
@click.option("--machine-id", envvar="DASHFLEET_AGENT_MACHINE_ID", default=None,
              help="Use this machine id instead of the one kept in the state folder [env DASHFLEET_AGENT_MACHINE_ID].")
@click.option("--interval", envvar="DASHFLEET_AGENT_INTERVAL", type=float, default=None,
              help="Seconds between reports (default 10) [env DASHFLEET_AGENT_INTERVAL; [agent] interval].")
@click.option("--state-dir", envvar="DASHFLEET_AGENT_STATE_DIR", default=None,
              help="Folder for the machine id, seq and spool (default: the platform's state folder, "
                   "see docs/deploy.md) [env DASHFLEET_AGENT_STATE_DIR; [agent] state_dir].")
@click.option("--ca-bundle", envvar="DASHFLEET_AGENT_CA_BUNDLE", default=None, type=click.Path(dir_okay=False),
              help="PEM file of the CA that signed the server's certificate [env DASHFLEET_AGENT_CA_BUNDLE; [agent] ca_bundle].")
@click.option("--once", is_flag=True,
              help="Collect and send one report (and any backlog), then exit: 0 delivered, 75 spooled "
                   "for later, 77 refused (token, URL or certificate), 1 failed.")
@agent_config_option
@click.pass_context
def agent(ctx: click.Context, server, token_file, token, machine_id, interval, state_dir, ca_bundle, once,
          config_path) -> None:
    """Run the agent: collect every interval, spool on disk, deliver to the server in order."""
    ctx.ensure_object(dict)
    ctx.obj["agent_state_dir"] = state_dir
    ctx.obj["agent_machine_id"] = machine_id
    ctx.obj["agent_config_path"] = config_path
    if ctx.invoked_subcommand is not None:
        return
    given = _token_source(ctx, token=token, token_file=token_file)
    overrides = {"agent.server": server, "agent.machine_id": machine_id, "agent.interval": interval,
                 "agent.state_dir": state_dir, "agent.ca_bundle": ca_bundle}
    if given == "token":      # outranks the config file's token_file
        overrides.update({"agent.token": token, "agent.token_file": UNSET})
    elif given == "token_file":
        overrides.update({"agent.token": UNSET, "agent.token_file": token_file})
    sys.exit(run_agent(agent_context(config_path, overrides), once=once))


def _token_source(ctx: click.Context, **values: str | None) -> str | None:
    """Which of `token` / `token_file` the command line, else the environment, gave (None: neither,
    the config file decides). Both from the same place is a usage error."""
    rank = {name: 0 if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE else 1
            for name, value in values.items() if value}
    if len(rank) == 2 and rank["token"] == rank["token_file"]:
        where = ("as flags" if rank["token"] == 0 else
                 "in the environment (DASHFLEET_AGENT_TOKEN or FLEET_TOKEN, and DASHFLEET_AGENT_TOKEN_FILE)")
        raise click.UsageError(f"a token and a token file are both given {where}: give one, not both "
                               "(--token-file keeps the token out of `ps`)")
    return min(rank, key=rank.__getitem__) if rank else None


# Built-in plugin kinds the agent never uses: leaving them out of its plugin manager keeps their
# modules (and their imports) out of a process that runs on every workstation.
SERVER_SIDE_KINDS = ("storage", "notifiers", "actions")


def agent_context(config_path: str | None, overrides: dict) -> Context:
    """Settings and a plugin manager for the agent: collectors and health checks only."""
    from dashfleet_core.config import load_settings
    from dashfleet_core.plugins import builtin_candidates, make_plugin_manager

    settings = load_settings(_config_file(config_path), overrides=overrides)
    skip = {c.name for c in builtin_candidates() if c.kind in SERVER_SIDE_KINDS}
    plugins = settings.plugins.model_copy(update={"disabled": sorted(set(settings.plugins.disabled) | skip)})
    trimmed = settings.model_copy(update={"plugins": plugins})
    return Context(settings=trimmed, pm=make_plugin_manager(trimmed))


def run_agent(loaded: Context, *, once: bool = False) -> int:
    """Build the agent from validated settings and run it; returns the exit code."""
    from dashfleet_core.engine import Engine

    from .identity import IdentityError
    from .runner import EXIT_FAILED, EXIT_USAGE, Agent
    from .signals import stop_on_signals
    from .spool import SpoolError
    from .token_file import TokenFileError, read_token_file

    s = loaded.settings.agent
    log = logging.getLogger("dashfleet_agent")
    if logging.getLogger().level > logging.INFO:
        log.setLevel(logging.INFO)  # start, stop and delivery problems are worth a line in the journal
    if s.token and s.token_file:
        click.echo(f"dashfleet agent: {loaded.settings.source}: [agent] token and token_file are both set: "
                   "keep one (token_file keeps the token out of the config file)", err=True)
        return EXIT_USAGE
    token = s.token
    if s.token_file:
        try:
            token = read_token_file(s.token_file)
        except TokenFileError as exc:
            click.echo(f"dashfleet agent: {exc}", err=True)
            return EXIT_USAGE
    missing = [name for name, value in (("--server", s.server), ("--token", token)) if not value]
    if missing:
        click.echo(f"dashfleet agent: {' and '.join(missing)} missing: give them as flags (the token "
                   "preferably as --token-file PATH), as DASHFLEET_AGENT_SERVER / DASHFLEET_AGENT_TOKEN_FILE, "
                   "or in the config's [agent] table", err=True)
        return EXIT_USAGE
    if not s.verify_tls:
        log.warning("TLS certificate verification is OFF ([agent] verify_tls = false): anyone on the "
                    "network path can read the token; use ca_bundle instead")
    if s.server.startswith("http://") and not _is_loopback(s.server):
        log.warning("sending to %s over plain http: the token and reports travel unencrypted; use https",
                    s.server)
    try:
        host = Agent(resolved(s, token), Engine(loaded.settings, loaded.pm))
    except (SpoolError, IdentityError, OSError) as exc:
        click.echo(f"dashfleet agent: {exc}", err=True)
        return EXIT_FAILED
    try:
        if once:
            return host.once()
        with stop_on_signals() as stop:
            host.run(stop)
        return 0
    finally:
        host.close()


def resolved(s: AgentSettings, token: str) -> AgentSettings:
    """The settings the agent runs on: the token read (from token_file if that was the form given)
    and the state folder made concrete (the platform's default when none is set)."""
    return s.model_copy(update={"token": token, "token_file": None,
                                "state_dir": str(_resolve_state_dir(None, s.state_dir))})


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


@agent.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--state-dir", default=None, help="The agent's state folder (as given to the agent).")
@click.pass_context
def agent_status(ctx: click.Context, as_json: bool, state_dir: str | None) -> None:
    """Last delivery, spool depth, dropped and rejected reports of the agent on this machine."""
    from dashfleet_core.text import visible_lines

    from .status import format_status, read_status

    loaded = load_context(_config_file(ctx.obj.get("agent_config_path")))
    state_dir = _resolve_state_dir(state_dir or ctx.obj.get("agent_state_dir"), loaded.settings.agent.state_dir)
    doc = read_status(state_dir, ctx.obj.get("agent_machine_id") or loaded.settings.agent.machine_id)
    click.echo(json.dumps(doc, indent=2) if as_json else visible_lines(format_status(doc)))
