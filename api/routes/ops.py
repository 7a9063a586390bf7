"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.security import bank
from tasks.publisher import broker_ping

blp = Blueprint("ops", __name__)


@blp.get("/health")
def health() -> Response:
    return jsonify(status="ok")


@blp.get("/ready")
def ready() -> tuple[Response, int, dict[str, str]] | Response:
    failed: dict[str, str] = {}
    try:
        bank().db.ping()
    except Exception as exc:
        failed["database"] = type(exc).__name__
    try:
        broker_ping()
    except Exception as exc:
        failed["broker"] = type(exc).__name__
    if failed:
        body = {"status": "unavailable", "failed": sorted(failed), "details": failed}
        return jsonify(body), 503, {"Retry-After": "5"}
    return jsonify(status="ok", checks={"database": "ok", "broker": "ok"})
