"""The beat tick of standing orders: each due date becomes exactly one transfer, then settles from its job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import jobs
from core.bank import Bank
from core.clock import utcnow
from core.errors import BankqError, DependencyUnavailable, TransientError
from core.models import Job, StandingOrder, StandingOrderOccurrence, Transfer, User
from core.money import format_minor
from core.notifications import queue_notification
from core.schedule_math import catch_up_days, following
from core.standing_orders.orders import transfer_request
from core.transfers import request_transfer

SKIPPED_REASON = "missed: due {due} while the scheduler was down, older than the {days}-day catch-up window"
# Refusals that say nothing about the order, only that this moment was busy: the next tick asks again.
TRANSIENT_CODES = {"idempotency_key_in_use"}


@dataclass
class TickReport:
    requested: int = 0
    failed: int = 0
    skipped: int = 0
    settled: int = 0


def run_due_standing_orders(bank: Bank, *, limit: int = 200, catch_up: int | None = None) -> TickReport:
    """Beat: request every due occurrence of every active order, once; then settle finished occurrences.
    One order per transaction, claimed with SKIP LOCKED: concurrent ticks share the orders, never wait."""
    days = catch_up_days() if catch_up is None else catch_up
    report = TickReport()
    for _ in range(limit):
        today = utcnow().date()
        with bank.db.transaction() as s:
            order = s.scalar(
                select(StandingOrder)
                .where(StandingOrder.status == "active", StandingOrder.next_date <= today)
                .order_by(StandingOrder.next_date)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if order is None:
                break
            _run_order(bank, s, order, today, days, report)
    settle_occurrences(bank, report)
    return report


def _run_order(bank: Bank, s: Session, order: StandingOrder, today: date, days: int, report: TickReport) -> None:
    owner = s.get(User, order.user_id)
    horizon = today - timedelta(days=days)
    day = order.next_date
    while day is not None and day <= today and (order.end_date is None or day <= order.end_date):
        if day < horizon:
            if _insert(s, order, day, status="skipped", reason=SKIPPED_REASON.format(due=day, days=days)):
                report.skipped += 1
        elif owner is not None:
            _request(bank, s, order, owner, day, report)
        day = following(order.start_date, order.frequency, day)
    ended = day is None or (order.end_date is not None and day > order.end_date)
    order.next_date = None if ended else day
    order.status = "ended" if ended else order.status
    order.updated_at = utcnow()


def _insert(s: Session, order: StandingOrder, day: date, **values: Any) -> StandingOrderOccurrence | None:
    """The occurrence row, or None if it exists already (the unique (order, date) key decides)."""
    occurrence = StandingOrderOccurrence(order_id=order.id, occurrence_date=day, created_at=utcnow(), **values)
    try:
        with s.begin_nested():
            s.add(occurrence)
            s.flush()
    except IntegrityError:
        return None
    return occurrence


def _request(bank: Bank, s: Session, order: StandingOrder, owner: User, day: date, report: TickReport) -> None:
    occurrence = _insert(s, order, day, status="requested")
    if occurrence is None:
        return  # acted on already: never twice
    key = f"standing-order:{order.id}:{day.isoformat()}"
    body = {"standing_order_id": order.id, "date": day.isoformat()}
    try:
        accepted = request_transfer(
            bank,
            owner,
            transfer_request(order, day),
            idempotency_key=key,
            body=body,
            preauthorised=True,
            session=s,
        )
    except (DependencyUnavailable, TransientError):
        raise
    except BankqError as exc:
        if exc.code in TRANSIENT_CODES:
            raise TransientError(str(exc)) from exc
        occurrence.status, occurrence.failure_code, occurrence.settled_at = "failed", exc.code[:64], utcnow()
        occurrence.reason = exc.detail[:200]
        _notify(s, order, owner, occurrence, "transfer_failed")
        report.failed += 1
        return
    occurrence.job_id = accepted.body["id"]
    occurrence.transfer_id = s.scalar(select(Transfer.id).where(Transfer.job_id == occurrence.job_id))
    report.requested += 1


def settle_occurrences(bank: Bank, report: TickReport | None = None, *, limit: int = 500) -> TickReport:
    """Requested occurrences whose job has finished: posted (a receipt), failed (`transfer_failed`, and no
    retry) or cancelled. Each is settled once: the row is claimed with SKIP LOCKED and moved off `requested`."""
    report = report or TickReport()
    with bank.db.transaction() as s:
        rows = list(
            s.execute(
                select(StandingOrderOccurrence, Job.status, Job.error_code)
                .join(Job, Job.id == StandingOrderOccurrence.job_id)
                .where(StandingOrderOccurrence.status == "requested", Job.status.in_(jobs.TERMINAL))
                .order_by(StandingOrderOccurrence.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=StandingOrderOccurrence)
            )
        )
        for occurrence, job_status, error_code in rows:
            order = s.get(StandingOrder, occurrence.order_id)
            owner = s.get(User, order.user_id) if order else None
            occurrence.settled_at = utcnow()
            if job_status == "succeeded":
                occurrence.status = "posted"
            elif job_status == "failed":
                occurrence.status, occurrence.failure_code = "failed", error_code
            else:
                occurrence.status = "cancelled"
            if order is not None and owner is not None and occurrence.status != "cancelled":
                template = "transfer_posted" if occurrence.status == "posted" else "transfer_failed"
                _notify(s, order, owner, occurrence, template)
            report.settled += 1
    return report


def _notify(
    s: Session,
    order: StandingOrder,
    owner: User,
    occurrence: StandingOrderOccurrence,
    template: str,
) -> None:
    queue_notification(
        s,
        user=owner,
        channel="email",
        template=template,
        context={
            "amount": format_minor(order.amount, order.currency),
            "currency": order.currency,
            "transfer_id": occurrence.transfer_id or f"standing order {order.id}, {occurrence.occurrence_date}",
            "failure_code": occurrence.failure_code,
            "standing_order_id": order.id,
            "date": occurrence.occurrence_date.isoformat(),
        },
    )
