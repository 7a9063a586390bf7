"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import json
from typing import Any

from core.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 512


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise ValidationFailed("Invalid cursor.", code="invalid_cursor", errors={"cursor": ["Too long."]})
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if isinstance(values, list) and len(values) == arity:
            return values
    except (ValueError, TypeError, RecursionError):
        pass
    raise ValidationFailed("Invalid cursor.", code="invalid_cursor", errors={"cursor": ["Not a cursor from this API."]})


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("Invalid limit.", errors={"limit": [f"Must be between 1 and {MAX_LIMIT}."]})
    return limit
