"""Append-only audit trail, written in the same transaction as the change it describes."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from core.clock import isoformat, utcnow
from core.db import Database, queue_insert
from core.models import AuditEvent
from core.pagination import check_limit, decode_cursor, encode_cursor

EVENTS = cast(Table, AuditEvent.__table__)
# Every action the trail can hold, and what it means. The OpenAPI document lists them (GET /admin/audit and its
# ?action= filter); a test scans core so that no record() call writes an action missing here.
ACTIONS: dict[str, str] = {
    "account.opened": "An account was opened (details: owner_id, currency).",
    "account.frozen": "Staff froze an account.",
    "account.unfrozen": "Staff unfroze an account.",
    "user.created": "A user signed up or an admin created one (details: role).",
    "user.profile_updated": "A user changed their own profile (details: fields).",
    "user.locked": "Too many failed logins locked a user out.",
    "user.admin_bootstrapped": "The admin from BANKQ_ADMIN_USERNAME was created at start-up.",
    "user.password_reset_requested": "A password-reset code was sent.",
    "user.password_reset": "A user set a new password with a reset code.",
    "customer.registered": "A teller registered a walk-in customer.",
    "customer.updated": "Staff changed a customer's profile (details: fields).",
    "customer.status_changed": "Staff changed a customer's status (details: previous, status).",
    "customer.limits_set": "Staff set a customer's outgoing limits in one currency (details: currency, daily, "
    "monthly; null: the bank's default).",
    "transfer.requested": "A transfer was accepted (details: job_id, amount, currency).",
    "transfer_batch.requested": "A batch of transfers was accepted as one job (details: job_id, items, atomic, "
    "totals per currency).",
    "deposit.requested": "A deposit was accepted (details: job_id, amount, currency).",
    "withdrawal.requested": "A withdrawal was accepted (details: job_id, amount, currency).",
    "reversal.requested": "Staff asked to reverse a posted transfer, deposit or withdrawal (details: job_id, amount, "
    "currency, reverses, reason).",
    "transfer.confirmed": "The customer confirmed a large transfer with its one-time code.",
    "transfer.confirmation_failed": "A large transfer failed: too many wrong confirmation codes.",
    "transfer.confirmation_expired": "A large transfer failed: it was not confirmed in time.",
    "transfer.cancelled": "A scheduled or unconfirmed transfer was cancelled.",
    "kyc.document_uploaded": "A customer uploaded an identity document (details: document_type).",
    "kyc.document_verified": "OCR verified a document.",
    "kyc.document_needs_review": "OCR could not decide a document; a person will (details: reasons).",
    "kyc.document_rejected": "OCR rejected a document (details: reasons).",
    "kyc.review_approve": "Staff approved a document on review (details: reason).",
    "kyc.review_reject": "Staff rejected a document on review (details: reason).",
    "report.requested": "A statement was requested (details: account_id, format, period).",
    "report.ready": "A statement was rendered (details: format, size).",
    "report.failed": "A statement could not be rendered.",
    "reminder.created": "A reminder was set (details: repeat).",
    "reminder.cancelled": "A reminder was deleted.",
    "standing_order.created": "A standing order was set up (details: amount, currency, frequency).",
    "standing_order.cancelled": "A standing order was deleted.",
    "webhook.created": "A customer added a webhook endpoint (details: events).",
    "webhook.updated": "A customer changed a webhook endpoint (details: fields).",
    "webhook.deleted": "A customer deleted a webhook endpoint.",
    "webhook.secret_rotated": "A customer rotated a webhook's signing secret; the old one signs for 24 h more.",
    "webhook.disabled": "bankq disabled a webhook endpoint: it answered 410 or failed for 5 days (details: reason).",
    "loan_product.created": "An admin defined a loan product (details: currency, rate).",
    "loan.applied": "A customer applied for a loan (details: amount, currency, term_months).",
    "loan.rejected": "Staff rejected a loan application (details: reason).",
    "loan.approved": "Staff approved a loan; its disbursement is a job (details: job_id, amount, currency).",
    "loan.disbursed": "A loan was paid out to the borrower's account and its schedule written (details: job_id, "
    "transfer_id).",
    "loan.repayment_requested": "The borrower asked to repay early; it is a job (details: job_id, amount).",
    "loan.repaid_early": "An early repayment was posted and the rest rescheduled (details: job_id, transfer_id, "
    "amount).",
    "loan.instalment_paid": "An instalment was collected from the borrower's account (details: instalment, amount).",
    "loan.instalment_overdue": "An instalment could not be collected on its due date (details: instalment, amount).",
    "loan.late_fee_charged": "An instalment unpaid after the grace period was charged the late fee (details: "
    "instalment, amount).",
    "loan.repaid": "A loan's last instalment was paid.",
    "loan.disbursement_failed": "A loan could not be paid out; it is back to applied (details: job_id, code).",
    "webhook.redelivery_requested": "A customer asked for a delivery to be sent again (details: attempt_id).",
}


def record(session: Session, actor_id: str | None, action: str, target: str | None, **details: Any) -> None:
    session.add(AuditEvent(**event_row(actor_id, action, target, **details)))


def queue_record(session: Session, actor_id: str | None, action: str, target: str | None, **details: Any) -> None:
    """`record`, as one of the transaction's queued inserts (core.db.queue_insert) instead of an ORM object."""
    queue_insert(session, EVENTS, {**event_row(actor_id, action, target, **details), "at": utcnow()})


def event_row(actor_id: str | None, action: str, target: str | None, **details: Any) -> dict[str, Any]:
    if action not in ACTIONS:  # a bug, not bad input: the trail's vocabulary is part of the API
        raise ValueError(f"unknown audit action {action!r}: add it to core.audit.ACTIONS")
    return {"actor_id": actor_id, "action": action, "target": target, "details": details or None}


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
