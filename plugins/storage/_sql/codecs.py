"""Values to and from the SQL columns: UTC epoch times, the `extra` blob of non-core metrics,
JSON text, and `machines` rows as `MachineState` (with the cache that keeps the fleet list cheap).

Each codec is the inverse of another here (`epoch`/`from_epoch`, `pack_extra`/`unpack_extra`,
`dumps`/`loads`), so a value read back is the value stored; the queries never format a column
themselves.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_json

from dashfleet_core.models import MachineState, as_utc

from .schema import CORE_METRICS

MACHINE_LIST = TypeAdapter(list[MachineState])


def epoch(value: datetime) -> float:
    """UTC epoch seconds: times are numbers in the database, so chart buckets are arithmetic."""
    return as_utc(value).timestamp()


def from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode  # built once, not per call


def dumps(value: Any) -> str:
    return _ENCODE(value)


def json_text(value: Any) -> str:
    """JSON for a column only read back (not hashed): pydantic-core's encoder, 4x json's."""
    return to_json(value).decode()


def loads(value: Any) -> Any:
    """JSON text (SQLite, TEXT columns) or an already decoded value (PostgreSQL JSONB)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


def pack_extra(metrics: dict[str, float]) -> tuple[list[str], bytes | None]:
    """The non-core metrics as (sorted names, blob of doubles in that order)."""
    names = sorted(k for k in metrics if k not in CORE_METRICS)
    if not names:
        return names, None
    return names, struct.pack(f"<{len(names)}d", *(metrics[k] for k in names))


def unpack_extra(names: list[str], blob: bytes | None) -> dict[str, float]:
    if not blob:
        return {}
    return dict(zip(names, struct.unpack(f"<{len(names)}d", blob)))


quote = json.encoder.encode_basestring  # a JSON string literal, in C


def time_json(value: float) -> str:
    """An epoch time as JSON that pydantic reads back as exactly `from_epoch(value)`: the number
    itself (pydantic takes seconds, and formatting a float is 4x cheaper than an ISO date), or
    the ISO text where pydantic would read the number differently: at or past 2e10 (it takes
    milliseconds there), below zero, and on a tie of half a microsecond (it rounds up where
    Python rounds to even)."""
    if 0.0 <= value < 2e10 and (value % 1.0) * 1e6 % 1.0 != 0.5:
        return repr(float(value))
    return f'"{from_epoch(value).isoformat()}"'


def machine_json(row: tuple) -> str:
    """A `machines` row as MachineState JSON; the JSON columns are embedded as they are stored."""
    (org, machine_id, hostname, os_name, agent_version, last_seq, first_seen, last_seen,
     collected, metrics, facts, health, spool_dropped) = row
    q = quote  # a local name: looked up once per row, not once per field
    return (
        f'{{"org":{q(org)},"machine_id":{q(machine_id)},"hostname":{q(hostname)},'
        f'"os":{q(os_name)},"agent_version":{q(agent_version)},'
        f'"last_seq":{"null" if last_seq is None else int(last_seq)},'
        f'"first_seen":{time_json(first_seen)},"last_seen":{time_json(last_seen)},'
        f'"collected_at":{time_json(collected)},'
        f'"metrics":{metrics},"facts":{facts},"health":{health},"spool_dropped":{int(spool_dropped)}}}'
    )


STATE_CHUNK = 100  # machine rows per JSON document validated at once


class StateCache:
    """MachineState by `machines` row, per org, for the fleet list.

    The list is read every few seconds (the fleet page, the silence sweep) while each machine
    changes about once a minute, so only rows that changed since the last read are validated
    again. The key is the whole row, so a cached state is always exactly what its row says; each
    read keeps only the rows it returned, so the cache never outgrows the fleet. The states are
    shared between reads: callers treat them as read-only (the contract says so)."""

    def __init__(self) -> None:
        self._by_org: dict[str, dict[tuple, MachineState]] = {}

    def states(self, org: str, rows: list[tuple]) -> list[MachineState]:
        known = self._by_org.get(org, {})
        found = [known.get(row) for row in rows]
        missing = [row for row, state in zip(rows, found) if state is None]
        if missing:
            # JSON documents of STATE_CHUNK rows validated by pydantic-core at once: cheaper than
            # a model per row, and the text of a whole fleet is never built at once
            states: list[MachineState] = []
            for start in range(0, len(missing), STATE_CHUNK):
                chunk = missing[start:start + STATE_CHUNK]
                states += MACHINE_LIST.validate_json("[" + ",".join(map(machine_json, chunk)) + "]")
            fresh = iter(states)
            found = [state if state is not None else next(fresh) for state in found]
        self._by_org[org] = dict(zip(rows, found))  # a dict replaced whole: safe for threads
        return found

