"""`dashfleet-agent`: the agent as a program of its own (the PyInstaller binary, `python -m
dashfleet_agent`). Same flags as `dashfleet agent`, without the rest of the `dashfleet` CLI, so
the binary carries no server code."""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> None:
    import click

    from dashfleet_core.config import ConfigError

    from dashfleet_agent.cli import agent

    verbose = sum(a.count("v") for a in (argv or sys.argv[1:]) if a.startswith("-v") and set(a[1:]) == {"v"})
    args = [a for a in (argv if argv is not None else sys.argv[1:])
            if not (a.startswith("-v") and set(a[1:]) == {"v"})]
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        agent.main(args=args, prog_name="dashfleet-agent", standalone_mode=False,
                   help_option_names=["-h", "--help"])  # as `dashfleet` takes them
    except ConfigError as exc:
        click.echo(f"dashfleet-agent: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
