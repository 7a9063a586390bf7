"""Every error leaves as an RFC 9457 problem document. The one place errors are mapped to HTTP."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from core.errors import BankqError, DependencyUnavailable

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 410: "gone", 413: "payload_too_large", 414: "uri_too_long",
    415: "unsupported_media_type", 417: "expectation_failed", 422: "validation_error", 429: "rate_limited",
    431: "header_fields_too_large", 500: "internal_error", 501: "not_implemented", 503: "service_unavailable",
}


def problem_body(status: int, code: str, title: str, detail: str | None = None) -> dict[str, Any]:
    """The RFC 9457 document; also written by the gunicorn worker (api.gunicorn_conf) for what Flask never sees."""
    return {
        "type": f"https://docs.bankq.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }


def problem(status: int, code: str, title: str, detail: str | None = None, *,
            errors: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
            extra: dict[str, Any] | None = None) -> Response:
    body = problem_body(status, code, title, detail)
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401 and "WWW-Authenticate" not in response.headers:  # RFC 9110: a 401 carries a challenge
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _flatten(messages: Any) -> dict[str, list[str]]:
    """webargs nests messages by location ({"json": {"amount": [...]}}); clients want fields."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            flat.setdefault(prefix or "_schema", []).extend(value)
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                walk(f"{prefix}.{i}", inner)
        else:
            flat.setdefault(prefix or "_schema", []).append(str(value))

    if isinstance(messages, dict):
        for location, inner in messages.items():
            walk("" if location in ("json", "query", "form", "files", "headers", "view_args") else location, inner)
    return flat


def from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    headers = dict(data.get("headers") or {}) if isinstance(data, dict) else {}
    code = HTTP_CODES.get(status, "error")
    detail = exc.description if isinstance(exc.description, str) else None
    errors = _flatten(messages) if messages else None
    bad_json = errors and any("json" in k.lower() or "Invalid JSON" in " ".join(v) for k, v in errors.items())
    if status == 400 and bad_json:
        code, detail = "malformed_json", "The request body is not valid JSON."
    elif status == 400 and "json" in (detail or "").lower():
        code = "malformed_json"
    if status == 422:
        detail = "The request did not pass validation; see errors."
    if status == 413:
        detail = "The request body is too large."
    if status == 405:
        headers.update({"Allow": ", ".join(exc.valid_methods or [])} if getattr(exc, "valid_methods", None) else {})
    title = exc.name if status != 422 else "Validation failed"
    return problem(status, code, title, detail, errors=errors, headers=headers)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BankqError)
    def _bankq(exc: BankqError) -> Response:
        if exc.status >= 500:
            log.warning("dependency failure: %s", exc.detail)
        return problem(exc.status, exc.code, exc.title, exc.detail, errors=exc.errors, headers=exc.headers,
                       extra=exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return from_http_exception(exc)

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _db_down(exc: Exception) -> Response:
        log.warning("database unavailable: %s", getattr(exc, "orig", None) or exc)
        err = DependencyUnavailable("The database is unavailable.", code="database_unavailable")
        return problem(err.status, err.code, err.title, err.detail, headers=err.headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if _is_redis_outage(exc):
            err = DependencyUnavailable("A dependency (Redis) is unavailable.", code="redis_unavailable")
            return problem(err.status, err.code, err.title, err.detail, headers=err.headers)
        log.exception("unhandled error")
        return problem(500, "internal_error", "Internal server error", "Something went wrong on our side.")


def _is_redis_outage(exc: Exception) -> bool:
    try:
        import redis
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
