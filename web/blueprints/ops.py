"""What operators and tools read: `/healthz`, `/metrics` (Prometheus), `/api/openapi.json`."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from dashfleet_core import __version__

from ..access import OPEN, principal, requires
from ..app import get_fleet
from ..auth import ApiError
from ..metrics import registry
from ..openapi import openapi_document

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@requires(OPEN)
def healthz():
    storage = get_fleet().storage
    try:
        storage.kv_get("healthz", "ping")
    except Exception as exc:
        log.warning("healthz: storage check failed: %s", exc)
        raise ApiError(503, "storage is unavailable; the server log says why") from None
    return jsonify({"status": "ok", "version": __version__, "storage": storage.scheme or type(storage).__name__})


@bp.get("/metrics")
def metrics():
    from prometheus_client.exposition import choose_encoder  # on the first scrape (see ..metrics)

    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    who = principal()
    return Response(encoder(registry(who.org, who.server)), content_type=content_type)


@bp.get("/api/openapi.json")
def openapi():
    return jsonify(openapi_document())
