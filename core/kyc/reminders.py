"""Beat: remind customers whose identity is still not verified, once per period, however many sweeps run."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.bank import Bank
from core.clock import as_utc, utcnow
from core.models import User
from core.notifications import queue_notification

NAMESPACE = uuid.UUID("5f0c3b7e-8f51-4a8e-9d7a-6b1c0e2a4d93")


def reminder_id(user_id: str, period: int) -> str:
    """The same customer and period always give the same notification id, so the second send is refused."""
    return str(uuid.uuid5(NAMESPACE, f"kyc-reminder:{user_id}:{period}"))


def remind_unverified(bank: Bank, *, limit: int = 500) -> int:
    """Customers unverified (or rejected) for at least BANKQ_KYC_REMINDER_DAYS get one email per such period."""
    every = timedelta(days=bank.settings.kyc_reminder_days)
    now = utcnow()
    sent = 0
    with bank.db.transaction() as s:
        customers = list(
            s.scalars(
                select(User)
                .where(
                    User.role == "customer",
                    User.status == "active",
                    User.kyc_status.in_(("unverified", "rejected")),
                    User.created_at <= now - every,
                )
                .order_by(User.created_at)
                .limit(limit)
            )
        )
        for user in customers:
            period = int((now - as_utc(user.created_at)) / every)
            try:
                with s.begin_nested():
                    queue_notification(
                        s,
                        user=user,
                        channel="email",
                        template="kyc_reminder",
                        context={"days": period * bank.settings.kyc_reminder_days},
                        notification_id=reminder_id(user.id, period),
                    )
                sent += 1
            except IntegrityError:
                continue  # reminded for this period already (perhaps by a second beat a moment ago)
    return sent
