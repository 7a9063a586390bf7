"""Append-only audit trail, written in the same transaction as the change it describes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.models import AuditEvent


def record(session: Session, actor_id: str | None, action: str, target: str | None, **details: Any) -> None:
    session.add(AuditEvent(actor_id=actor_id, action=action, target=target, details=details or None))
