"""PyInstaller's entry script for the `dashfleet-agent` binary."""

from dashfleet_agent.binary import main

main()
