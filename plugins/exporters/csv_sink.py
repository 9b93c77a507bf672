"""CSV exporter: one row per record, a header row first, for spreadsheets.

Columns are `machine_id, seq, collected_at`, then `health.score, health.status, health.findings`
when records carry health, then one column per metric and `fact:<name>` per fact. A CSV file
cannot grow columns once written, so the columns are fixed before the first row: by every record
of a `dashfleet export` (`prepare`), by the header of a file `watch` appends to (`resume`), else
by the first record; a metric that appears later is left out and logged once. Facts and finding
messages come from machines we do not control, so every text cell goes through
`dashfleet_core.text.csv_cell`: a cell a spreadsheet would run as a formula (starting with
= + - @, a tab or a line break) gets a leading apostrophe (CSV injection), and control and bidi
characters are shown as visible stand-ins (ESC as U+241B), so `cat file.csv` cannot drive a
terminal. JSONL export keeps the exact text.
"""

from __future__ import annotations

import csv
import logging
from typing import IO, Any, Iterable

from dashfleet_core import hookimpl
from dashfleet_core.exporting import iso
from dashfleet_core.text import csv_cell

PLUGIN_NAME = "csv"

log = logging.getLogger(__name__)

BASE_COLUMNS = ["machine_id", "seq", "collected_at"]
HEALTH_COLUMNS = ["health.score", "health.status", "health.findings"]
FACT_PREFIX = "fact:"


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One record as `{column: cell}`: metrics by name, facts as `fact:<name>`, health spread out."""
    row: dict[str, Any] = {
        "machine_id": record.get("machine_id", ""),
        "seq": "" if record.get("seq") is None else record["seq"],
        "collected_at": iso(record.get("collected_at", "")),
    }
    health = record.get("health")
    if health is not None:
        if hasattr(health, "model_dump"):
            health = health.model_dump()
        row["health.score"] = health.get("score", "")
        row["health.status"] = health.get("status", "")
        row["health.findings"] = "; ".join(
            f.get("message", "") if isinstance(f, dict) else getattr(f, "message", str(f))
            for f in health.get("findings", [])
        )
    for name, value in (record.get("metrics") or {}).items():
        row[name] = value
    for name, value in (record.get("facts") or {}).items():
        row[FACT_PREFIX + name] = value
    return row


def columns_for(records: Iterable[dict[str, Any]]) -> list[str]:
    """The header a file holding `records` gets: every metric and fact any of them has (one pass,
    nothing kept: an export of millions of reports does not hold them in memory)."""
    metrics: set[str] = set()
    facts: set[str] = set()
    health = False
    for record in records:
        metrics.update(record.get("metrics") or {})
        facts.update(record.get("facts") or {})
        health = health or record.get("health") is not None
    columns = list(BASE_COLUMNS) + (HEALTH_COLUMNS if health else [])
    return columns + sorted(metrics) + [FACT_PREFIX + name for name in sorted(facts)]


class CsvSink:
    """Writes records as CSV rows to an open text stream; flushes every row so nothing is lost."""

    def __init__(self, stream: IO[str], columns: Iterable[str] | None = None,
                 header_written: bool = False) -> None:
        self._stream = stream
        self._columns: list[str] | None = list(columns) if columns is not None else None
        self._header_written = header_written
        self._writer = csv.writer(stream, lineterminator="\n")
        self._dropped: set[str] = set()

    @property
    def columns(self) -> list[str] | None:
        return self._columns

    def prepare(self, records: Iterable[dict[str, Any]]) -> None:
        """Fix the columns from every record to come (`dashfleet export`), so none is left out."""
        if self._columns is None:
            self._columns = columns_for(records)

    def resume(self, existing: IO[str]) -> None:
        """Appending to a file that has a header: keep its columns and do not repeat it."""
        header = next(csv.reader(existing), None)
        if header:
            self._columns = header
            self._header_written = True

    def write(self, record: dict[str, Any]) -> None:
        row = flatten(record)
        if self._columns is None:
            self._columns = columns_for([record])
        if not self._header_written:
            self._writer.writerow([csv_cell(col) for col in self._columns])
            self._header_written = True
        extra = set(row) - set(self._columns) - self._dropped
        if extra:
            self._dropped |= extra
            log.warning("CSV export: column(s) %s appeared after the header was written and are "
                        "left out; use JSONL export to keep every metric", ", ".join(sorted(extra)))
        self._writer.writerow([csv_cell(row.get(col, "")) for col in self._columns])
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


@hookimpl
def register_exporters(register):
    register("csv", CsvSink)
