"""Append-only audit trail, written in the same transaction as the change it describes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import isoformat
from core.db import Database
from core.models import AuditEvent
from core.pagination import check_limit, decode_cursor, encode_cursor


def record(session: Session, actor_id: str | None, action: str, target: str | None, **details: Any) -> None:
    session.add(AuditEvent(actor_id=actor_id, action=action, target=target, details=details or None))


def list_events(db: Database, *, action: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """The audit trail, newest first (admin)."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, 1)
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action == action)
    if after:
        if not isinstance(after[0], int):
            decode_cursor("!", 1)
        query = query.where(AuditEvent.id < after[0])
    with db.transaction() as s:
        rows = list(s.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [
            {
                "id": str(e.id),
                "actor_id": e.actor_id,
                "action": e.action,
                "target": e.target,
                "at": isoformat(e.at),
                "details": e.details,
            }
            for e in rows
        ],
        "next_cursor": encode_cursor(rows[-1].id) if more else None,
    }
