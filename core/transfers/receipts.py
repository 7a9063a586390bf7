"""Receipts: the customer hears how each transfer ended. A beat sweep, not the posting transaction, queues them,
so posting stays lean; a deterministic notification id and `receipt_at` make each receipt happen once."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.bank import Bank
from core.clock import utcnow
from core.models import Account, StandingOrderOccurrence, Transfer, User
from core.money import format_minor
from core.notifications import queue_notification

NAMESPACE = uuid.UUID("0b6f1c8e-2a57-4d0e-9b43-7f5e1d9a6c21")


def receipt_id(transfer_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"receipt:{transfer_id}"))


def send_receipts(bank: Bank, *, limit: int = 200) -> int:
    """Customer transfers that were posted or failed and have no receipt yet. Standing-order payments are
    receipted by their own settlement, with the order's context."""
    queued = 0
    with bank.db.transaction() as s:
        pending = list(
            s.scalars(
                select(Transfer)
                .where(
                    Transfer.receipt_at.is_(None),
                    Transfer.status.in_(("posted", "failed")),
                    Transfer.kind == "transfer",
                )
                .order_by(Transfer.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        by_standing_order = set(
            s.scalars(
                select(StandingOrderOccurrence.job_id).where(
                    StandingOrderOccurrence.job_id.in_([t.job_id for t in pending])
                )
            )
        )
        for t in pending:
            t.receipt_at = utcnow()
            if t.job_id in by_standing_order:
                continue
            source = s.get(Account, t.source_account_id)
            owner = s.get(User, source.owner_id) if source and source.owner_id else None
            if owner is None:
                continue
            template = "transfer_posted" if t.status == "posted" else "transfer_failed"
            try:
                with s.begin_nested():
                    queue_notification(
                        s,
                        user=owner,
                        channel="email",
                        template=template,
                        context={
                            "amount": format_minor(t.amount, t.currency),
                            "currency": t.currency,
                            "transfer_id": t.id,
                            "failure_code": t.failure_code,
                        },
                        notification_id=receipt_id(t.id),
                    )
                queued += 1
            except IntegrityError:
                continue  # receipted already
    return queued
