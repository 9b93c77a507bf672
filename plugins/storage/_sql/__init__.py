"""The storage contract on a SQL database, shared by the SQLite and PostgreSQL backends.

- `schema.py`: the tables and indexes, as append-only migrations, and the few spellings that
  differ between the two databases (`Dialect`);
- `codecs.py`: values to and from columns (epoch times, the blob of non-core metrics, JSON, a
  `machines` row as a `MachineState`);
- `queries.py`: `SqlStorage`, every query of the contract, on the transactions a backend supplies.

The package name starts with `_`, so the plugin loader does not take it for a plugin.
"""

from .queries import SqlStorage, Tx
from .schema import POSTGRESQL, SAMPLE_COLUMNS, SQLITE, Dialect

__all__ = ["POSTGRESQL", "SAMPLE_COLUMNS", "SQLITE", "Dialect", "SqlStorage", "Tx"]
