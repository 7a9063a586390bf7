"""The shared shape of every job POST: Idempotency-Key in, 202 + Location out, publish after commit."""

from __future__ import annotations

import logging
from typing import Any

from flask import request

from api.security import bank
from core.idempotency import Accepted
from tasks.publisher import publish_outbox

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "1-255 printable characters, scoped to the caller and kept 48 hours. Same key and body "
                   "replay the first answer (Idempotent-Replayed: true); a different body is 422.",
}


def idempotency_key() -> str | None:
    return request.headers.get("Idempotency-Key")


def raw_body() -> Any:
    return request.get_json(silent=True)


def job_response(accepted: Accepted) -> tuple[dict[str, Any], int, dict[str, str]]:
    if not accepted.replayed and accepted.outbox_ids:
        try:
            publish_outbox(bank().db, accepted.outbox_ids)
        except Exception:  # the job is safe in the database; the relay publishes it later
            log.warning("publishing after accept failed; the outbox relay will retry", exc_info=True)
    headers = {"Location": accepted.body["links"]["self"], "Retry-After": "1"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return accepted.body, accepted.status, headers
