"""Every error of the API is JSON with an `error` sentence a person can act on."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from .auth import ApiError

log = logging.getLogger(__name__)

HINTS = {
    404: "no such page or API endpoint; see /api/openapi.json for the API",
    405: "this method is not allowed here; see /api/openapi.json",
    413: "the request body is larger than the server accepts ([server] max_body_bytes); "
         "send fewer reports per request",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/metrics", "/healthz") or (
        request.accept_mimetypes.best == "application/json")


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        response = jsonify(exc.to_json())
        response.status_code = exc.status
        for name, value in exc.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not _wants_json() and exc.code == 404:
            return exc
        message = HINTS.get(exc.code or 500) or exc.description or exc.name
        response = jsonify({"error": message})
        response.status_code = exc.code or 500
        for name, value in exc.get_headers():
            if name.lower() != "content-type":  # keep `Allow` on a 405, `Retry-After`, ...
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = jsonify({"error": "internal error on the server; nothing from this request was "
                                     "acknowledged, retry later and check the server log"})
        response.status_code = 500
        return response
