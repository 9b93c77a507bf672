"""PyInstaller's entry script for the `dashfleet-desktop` binary: `dashfleet desktop` with the
arguments given, so a double-click opens the window."""

import sys

from dashfleet_core.cli import main

main(["desktop", *sys.argv[1:]])
