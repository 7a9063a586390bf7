"""Receipts: the customer hears how each transfer ended. A beat sweep, not the posting transaction, queues them,
so posting stays lean; `receipt_at`, set under the transfer's row lock in the transaction that queues the email,
makes each receipt happen once, and a deterministic notification id guards the rest.

Coalesced: the transfers of one customer that ended since the last sweep (every 5 s) share one email, so a customer
posting a hundred transfers a second gets one receipt every few seconds rather than a hundred, and the receipt
costs the worker a small share of a transfer's work. A transfer that ended alone still gets its own email
(`transfer_posted` / `transfer_failed`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.bank import Bank
from core.clock import utcnow
from core.models import Account, StandingOrderOccurrence, Transfer, User
from core.money import format_minor
from core.notifications import queue_notification

NAMESPACE = uuid.UUID("0b6f1c8e-2a57-4d0e-9b43-7f5e1d9a6c21")
BATCH = 500


def receipt_id(transfer_ids: list[str]) -> str:
    return str(uuid.uuid5(NAMESPACE, "receipt:" + ",".join(sorted(transfer_ids))))


def send_receipts(bank: Bank, *, limit: int = BATCH) -> int:
    """Customer transfers that were posted or failed and have no receipt yet, swept until none is left. Returns
    the emails queued. Standing-order payments are receipted by their own settlement, with the order's context."""
    queued = 0
    while True:
        with bank.db.transaction() as s:
            swept, emails = _sweep(s, limit)
        queued += emails
        if swept < limit:
            return queued


def _sweep(s: Session, limit: int) -> tuple[int, int]:
    pending = list(
        s.scalars(
            select(Transfer)
            .where(Transfer.receipt_at.is_(None), Transfer.status.in_(("posted", "failed")),
                   Transfer.kind == "transfer")
            .order_by(Transfer.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    by_standing_order = set(
        s.scalars(select(StandingOrderOccurrence.job_id).where(
            StandingOrderOccurrence.job_id.in_([t.job_id for t in pending])))
    )
    now = utcnow()
    by_owner: dict[str, list[Transfer]] = defaultdict(list)
    sources = {a.id: a for a in s.scalars(select(Account).where(
        Account.id.in_({t.source_account_id for t in pending})))}
    for t in pending:
        t.receipt_at = now
        source = sources.get(t.source_account_id)
        if t.job_id not in by_standing_order and source is not None and source.owner_id:
            by_owner[source.owner_id].append(t)
    emails = 0
    for owner_id, transfers in by_owner.items():
        owner = s.get(User, owner_id)
        if owner is None:
            continue
        context: dict[str, Any]
        if len(transfers) == 1:
            t = transfers[0]
            template, context = ("transfer_posted" if t.status == "posted" else "transfer_failed"), _line(t)
        else:
            template, context = "transfer_receipts", {"transfers": [_line(t) for t in transfers]}
        try:
            with s.begin_nested():
                queue_notification(s, user=owner, channel="email", template=template, context=context,
                                   notification_id=receipt_id([t.id for t in transfers]))
            emails += 1
        except IntegrityError:
            continue  # receipted already
    return len(pending), emails


def _line(t: Transfer) -> dict[str, str | None]:
    return {"amount": format_minor(t.amount, t.currency), "currency": t.currency, "transfer_id": t.id,
            "status": t.status, "failure_code": t.failure_code}
