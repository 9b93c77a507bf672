"""PyInstaller's entry script for the `dashfleet` binary: the whole command line (server, agent,
CLI), as `pip install dashfleet` gives it."""

from dashfleet_core.cli import main

main()
