"""`dashfleet-agent`: the agent as a program of its own (the PyInstaller binary, `python -m
dashfleet_agent`). Same flags as `dashfleet agent`, without the rest of the `dashfleet` CLI, so
the binary carries no server code."""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> None:
    from dashfleet_core.cli import run_program

    from dashfleet_agent.cli import agent

    verbose = sum(a.count("v") for a in (argv or sys.argv[1:]) if a.startswith("-v") and set(a[1:]) == {"v"})
    args = [a for a in (argv if argv is not None else sys.argv[1:])
            if not (a.startswith("-v") and set(a[1:]) == {"v"})]
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_program(agent, args, "dashfleet-agent", help_option_names=["-h", "--help"])  # as `dashfleet` takes them


if __name__ == "__main__":
    main()
