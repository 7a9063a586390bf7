"""What was sent to a customer, as the API shows it: never the context, so never a code."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.bank import Bank
from core.clock import isoformat
from core.models import Notification, User
from core.pagination import check_limit, decode_cursor, encode_cursor


def notification_view(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "channel": n.channel,
        "template": n.template,
        "subject": n.subject,
        "status": "queued" if n.status == "sending" else n.status,
        "created_at": isoformat(n.created_at),
        "sent_at": isoformat(n.sent_at),
    }


def list_notifications(bank: Bank, user: User, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """What was sent to this user, newest first."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, 2)
    query = select(Notification).where(Notification.user_id == user.id)
    with bank.db.transaction() as s:
        if after:
            anchor = s.get(Notification, str(after[1])[:36])
            if anchor is not None and anchor.user_id == user.id:
                query = query.where(
                    (Notification.created_at < anchor.created_at)
                    | ((Notification.created_at == anchor.created_at) & (Notification.id < anchor.id))
                )
        rows = list(s.scalars(query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [notification_view(n) for n in rows],
        "next_cursor": encode_cursor(isoformat(rows[-1].created_at), rows[-1].id) if more else None,
    }
