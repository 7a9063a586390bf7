"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import json
from typing import Any

from core.clock import isoformat
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


def newest_first(
    session: Any, query: Any, model: Any, *, limit: int | None, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of `query` ordered by (created_at, id) descending, and the cursor of the next page.

    The cursor names the last row shown; it is looked up within `query`, so a cursor never reaches past the
    caller's own rows."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, 2)
    if after:
        anchor = session.scalar(query.where(model.id == str(after[1])[:64]))
        if anchor is not None:
            query = query.where(
                (model.created_at < anchor.created_at)
                | ((model.created_at == anchor.created_at) & (model.id < anchor.id))
            )
    rows = list(session.scalars(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(isoformat(rows[-1].created_at), rows[-1].id)
