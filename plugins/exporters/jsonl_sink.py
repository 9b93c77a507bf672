"""JSONL exporter: one JSON object per line, every metric and fact kept, for tools and scripts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import IO, Any

from dashfleet_core import hookimpl
from dashfleet_core.exporting import iso

PLUGIN_NAME = "jsonl"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if hasattr(value, "model_dump"):  # a pydantic model such as Health
        return value.model_dump(mode="json")
    raise TypeError(f"cannot export {type(value).__name__} as JSON")


class JsonlSink:
    """Writes each record as one line of compact JSON; flushes every line so nothing is lost."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=_default, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


@hookimpl
def register_exporters(register):
    register("jsonl", JsonlSink)
