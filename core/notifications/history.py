"""What was sent to a customer, as the API shows it: never the context, so never a code."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.bank import Bank
from core.clock import isoformat
from core.models import Notification, User
from core.pagination import newest_first


def notification_view(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "channel": n.channel,
        "template": n.template,
        "subject": n.subject,
        "status": "queued" if n.status == "sending" else n.status,
        "created_at": isoformat(n.created_at),
        "sent_at": isoformat(n.sent_at),
        "attachment": (
            {k: n.attachment[k] for k in ("filename", "content_type", "size")} if n.attachment else None
        ),
    }


def list_notifications(bank: Bank, user: User, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """What was sent to this user, newest first."""
    with bank.db.transaction() as s:
        rows, next_cursor = newest_first(
            s, select(Notification).where(Notification.user_id == user.id), Notification, limit=limit, cursor=cursor
        )
    return {"items": [notification_view(n) for n in rows], "next_cursor": next_cursor}
