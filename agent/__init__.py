"""The DashFleet agent host: collect on the engine, keep every report in an on-disk spool, send
them to the server in order, at least once.

Modules, one job each: `paths` (where the state folder lives), `identity` (the machine id),
`machine_key` (the machine's secret the server binds to its id), `token_file` (`--token-file`),
`spool` (the crash-safe SQLite queue and the agent's counters), `backoff` (retry delays),
`sender` (one HTTP POST), `answers` (what an answer means: only a DashFleet acknowledgement empties
the spool), `runner` (the loop that ties them together), `status` (what `dashfleet agent status`
shows), `registry` (Windows: the settings the MSI writes), `winservice` (the Windows service
entry point), `cli` (the `dashfleet agent` command group, contributed to `dashfleet` through the
`dashfleet.commands` entry points), `binary` (the same group as a program of its own: the
PyInstaller entry point).

Nothing here imports Flask: the agent runs on workstations and stays small.
"""
