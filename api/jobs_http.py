"""The shared shape of every job POST: Idempotency-Key in, 202 + Location out (the unit of work publishes)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import request

from core.idempotency import Accepted, check_key

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "1-255 printable characters, scoped to the caller and kept 48 hours. Same key and body "
    "replay the first answer (Idempotent-Replayed: true); a different body is 422.",
}


def idempotency_required(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A missing or malformed Idempotency-Key is a 400 before the body is even looked at."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_key(request.headers.get("Idempotency-Key"))
        return fn(*args, **kwargs)

    return wrapper


def idempotency_key() -> str | None:
    return request.headers.get("Idempotency-Key")


def raw_body() -> Any:
    return request.get_json(silent=True)


def job_response(accepted: Accepted) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = {"Location": accepted.body["links"]["self"], "Retry-After": "1"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return accepted.body, accepted.status, headers
