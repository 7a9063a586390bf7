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
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.bank import Bank
from core.clock import utcnow
from core.models import Account, StandingOrderOccurrence, Transfer, User
from core.money import format_minor
from core.notifications import queue_notification

TRANSFERS = cast(Table, Transfer.__table__)
_LINE = (TRANSFERS.c.id, TRANSFERS.c.job_id, TRANSFERS.c.source_account_id, TRANSFERS.c.amount, TRANSFERS.c.currency,
         TRANSFERS.c.status, TRANSFERS.c.failure_code, TRANSFERS.c.created_at)
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
    """Mark up to `limit` transfers receipted and queue their emails: one UPDATE ... RETURNING claims them (rows a
    concurrent sweep holds are skipped), then their senders and standing orders are read in bulk."""
    now = utcnow()
    due = (select(TRANSFERS.c.id)
           .where(TRANSFERS.c.receipt_at.is_(None), TRANSFERS.c.status.in_(("posted", "failed")),
                  TRANSFERS.c.kind == "transfer")
           .order_by(TRANSFERS.c.created_at)
           .limit(limit)
           .with_for_update(skip_locked=True))
    claimed = s.execute(update(TRANSFERS).where(TRANSFERS.c.id.in_(due)).values(receipt_at=now).returning(*_LINE))
    pending = sorted(claimed, key=lambda t: (t.created_at, t.id))
    if not pending:
        return 0, 0
    by_standing_order = set(s.scalars(select(StandingOrderOccurrence.job_id).where(
        StandingOrderOccurrence.job_id.in_({t.job_id for t in pending}))))
    owner_of = {account_id: owner_id for account_id, owner_id in s.execute(select(Account.id, Account.owner_id).where(
        Account.id.in_({t.source_account_id for t in pending})))}
    by_owner: dict[str, list[Any]] = defaultdict(list)
    for t in pending:
        owner_id = owner_of.get(t.source_account_id)
        if t.job_id not in by_standing_order and owner_id:
            by_owner[owner_id].append(t)
    owners = {u.id: u for u in s.scalars(select(User).where(User.id.in_(by_owner)))} if by_owner else {}
    emails = 0
    for owner_id, transfers in by_owner.items():
        owner = owners.get(owner_id)
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


def _line(t: Any) -> dict[str, str | None]:
    """A transfer's line in its receipt (`t`: a claimed row of _LINE)."""
    return {"amount": format_minor(t.amount, t.currency), "currency": t.currency, "transfer_id": t.id,
            "status": t.status, "failure_code": t.failure_code}
