"""`python -m dashfleet_agent`: the same program as the `dashfleet-agent` binary."""

from dashfleet_agent.binary import main

main()
