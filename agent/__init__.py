"""The DashFleet agent host: collect on the engine, keep every report in an on-disk spool, send
them to the server in order, at least once.

Modules, one job each: `paths` (where the state folder lives), `identity` (the machine id),
`spool` (the crash-safe SQLite queue and the agent's counters), `backoff` (retry delays),
`sender` (one HTTP POST and what its answer means), `runner` (the loop that ties them together),
`status` (what `dashfleet agent status` shows), `binary` (the PyInstaller entry point).

Nothing here imports Flask: the agent runs on workstations and stays small.
"""
