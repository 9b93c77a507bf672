"""`POST /api/fleet/report`: agents deliver one report or a batch (their spool) here.

The path is kept cheap: auth from the header before the body is read, then pydantic-core parses
and validates the bytes in one pass (`_fast_path`); only a body that fails goes through the
careful path that names every problem. Then the server's own health scoring and one storage
commit per request.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json

from dashfleet_core.echo import clip, clip_all
from dashfleet_core.fleet import Receipt
from dashfleet_core.machine_keys import HEADER as MACHINE_KEY_HEADER, MachineKeyError
from dashfleet_core.models import Report
from dashfleet_core.storage import StorageFull

from ..access import REPORT, SELF, require, requires
from ..app import get_fleet
from ..auth import ApiError
from ..jsonbody import parse_json
from ..metrics import count_reports

log = logging.getLogger(__name__)

bp = Blueprint("ingest", __name__)

# Report fields a DashFleet agent may send only to a server that says it takes them (an older
# server refuses unknown fields), told in every answer of the report API.
ACCEPTS_HEADER = "X-DashFleet-Accepts"
OPTIONAL_FIELDS = "collector_failures"


@bp.after_request
def _advertise(response):
    response.headers[ACCEPTS_HEADER] = OPTIONAL_FIELDS
    return response

MAX_BATCH = 1000
RETRY_AFTER_SECONDS = 5


@bp.post("/api/fleet/report")
@requires(SELF)  # the credential may be in the body (the seed's agents): checked below
def post_report():
    header_auth = bool(request.headers.get("Authorization"))
    org = require(REPORT).org if header_auth else None
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"the body is {request.content_length} bytes, over the limit of {limit} "
                            "([server] max_body_bytes); send fewer reports per request")
    raw = request.get_data(cache=False)
    if header_auth:
        fast = _fast_path(raw, org)
        if fast is not None:
            return fast
    body = _parse_json(raw)
    if not header_auth:  # the seed's agents put the token in the body
        org = require(REPORT, body).org
    if isinstance(body, dict):
        body.pop("token", None)  # a credential, not a report field
    if isinstance(body, dict):
        return _single(body, org)
    if isinstance(body, list):
        return _batch(body, org)
    raise ApiError(422, "the body must be one report (a JSON object) or a list of reports",
                   fields=[])


_REPORTS = TypeAdapter(list[Report])


def _fast_path(raw: bytes, org: str):
    """The common case, a well-formed report or batch, parsed and validated in one pass by
    pydantic-core straight from the bytes. None when anything is wrong: the careful path below
    then finds and names each problem (and an invalid item of a batch does not sink the rest).
    pydantic-core stops at 200 levels of nesting by itself, and no valid report is more than three
    deep, so a deeper body always ends in `_parse_json`, which refuses it past MAX_DEPTH."""
    start = raw[:1] if raw[:1] in (b"{", b"[") else raw.lstrip()[:1]
    try:
        if start == b"{":
            report = Report.model_validate_json(raw)
        elif start == b"[":
            reports = _REPORTS.validate_json(raw)
        else:
            return None
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None
    if start == b"{":
        return _answer_single(report, org)
    if not 0 < len(reports) <= MAX_BATCH:
        return None
    return _answer_batch(len(reports), reports, list(range(len(reports))), {}, org)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        raise ApiError(400, "the body is empty: send a report as JSON "
                            "(Content-Type: application/json)")
    return parse_json(raw, "send one report object or a list of them")


def _validate(item: Any) -> Report:
    if not isinstance(item, dict):
        raise _SchemaError("a report must be a JSON object", [])
    try:
        return Report.model_validate(item)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # Metric names are keys, so a location can be as long as the client likes: clip each.
        fields = clip_all(".".join(str(p) for p in err["loc"]) or "(report)" for err in errors)
        parts = [f"{field}: {clip(err['msg'], 200)}" for field, err in zip(fields, errors)]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise _SchemaError("; ".join(parts[:5]) + more, fields) from None


class _SchemaError(Exception):
    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.message, self.fields = message, fields


def _store(reports: list[Report], org: str) -> list[Receipt]:
    try:
        return get_fleet().receive(reports, org=org, machine_key=request.headers.get(MACHINE_KEY_HEADER))
    except MachineKeyError as exc:
        count_reports("rejected", len(reports))
        raise ApiError(exc.status, exc.message) from None
    except StorageFull as exc:  # one line, not a traceback per request, on a disk that is full
        log.error("storing %d report(s) failed: %s", len(reports), exc)
        raise _unavailable("the server's disk is full") from None
    except Exception:
        log.exception("storing %d report(s) failed", len(reports))
        raise _unavailable("the server's storage is unavailable") from None


def _unavailable(why: str) -> ApiError:
    error = ApiError(503, f"{why}; nothing was stored, retry in {RETRY_AFTER_SECONDS} s")
    error.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return error


def _single(item: dict[str, Any], org: str):
    try:
        report = _validate(item)
    except _SchemaError as exc:
        count_reports("rejected")
        raise ApiError(422, f"the report does not match the schema: {exc.message}",
                       fields=exc.fields) from None
    return _answer_single(report, org)


def _answer_single(report: Report, org: str):
    receipt = _store([report], org)[0]
    if receipt.conflict:
        count_reports("rejected")
        raise ApiError(409, receipt.error, last_seq=receipt.last_seq)
    if receipt.error:
        count_reports("rejected")
        raise ApiError(422, f"the report was refused: {receipt.error}", fields=list(receipt.fields))
    stored = receipt.stored
    count_reports("stored" if stored else "duplicate")
    answer = {"stored": stored, "machine_id": report.machine_id, "seq": report.seq}
    if not stored:
        answer["duplicate"] = True
    return _json_response(answer, 201 if stored else 200)


def _json_response(document: dict[str, Any], status: int):
    """What `jsonify` answers (compact JSON and a newline), without its per-call setup."""
    return current_app.response_class(to_json(document) + b"\n", status=status, mimetype="application/json")


def _batch(items: list[Any], org: str):
    if not items:
        raise ApiError(422, "the list is empty: send one report object or a non-empty list",
                       fields=[])
    if len(items) > MAX_BATCH:
        raise ApiError(413, f"{len(items)} reports in one request, over the limit of {MAX_BATCH}; "
                            "send smaller batches")
    valid: list[Report] = []
    where: list[int] = []
    rejected: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(items):
        try:
            valid.append(_validate(item))
            where.append(index)
        except _SchemaError as exc:
            rejected[index] = {"index": index, "ok": False, "error": exc.message, "fields": exc.fields}
    return _answer_batch(len(items), valid, where, rejected, org)


def _answer_batch(count: int, valid: list[Report], where: list[int], rejected: dict[int, dict[str, Any]],
                  org: str):
    """Store the valid reports of a batch; one result per item, in the order they came."""
    receipts = _store(valid, org) if valid else []
    results: list[dict[str, Any]] = [{} for _ in range(count)]
    n_stored = n_dup = n_conflicts = 0
    for index, receipt in zip(where, receipts):
        if receipt.conflict:
            n_conflicts += 1
            results[index] = {"index": index, "ok": False, "conflict": True, "last_seq": receipt.last_seq,
                              "error": receipt.error}
        elif receipt.error:
            rejected[index] = {"index": index, "ok": False, "error": receipt.error, "fields": list(receipt.fields)}
        else:
            n_stored += receipt.stored
            n_dup += not receipt.stored
            results[index] = {"index": index, "ok": True, "stored": receipt.stored}
    for index, answer in rejected.items():
        results[index] = answer
    n_rejected = len(rejected)
    count_reports("stored", n_stored)
    count_reports("duplicate", n_dup)
    count_reports("rejected", n_rejected + n_conflicts)
    return _json_response({"results": results, "stored": n_stored, "duplicates": n_dup,
                           "rejected": n_rejected, "conflicts": n_conflicts}, 200)
