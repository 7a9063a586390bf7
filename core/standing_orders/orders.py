"""Standing orders as the customer manages them: create (checked exactly as a transfer), list, show, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.accounts import load_accounts
from core.bank import Bank
from core.clock import isoformat, utcnow
from core.errors import NotFound, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.models import StandingOrder, StandingOrderOccurrence, User, new_id
from core.money import check_currency, format_minor, parse_amount
from core.pagination import newest_first
from core.schedule_math import FREQUENCIES
from core.time_zones import local_isoformat
from core.transfers import TransferRequest
from core.transfers.requests import check_transfer

MAX_START_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class NewStandingOrder:
    source_account_id: str
    amount: str
    currency: str
    frequency: str
    start_date: date
    end_date: date | None = None
    description: str | None = None
    destination_account_id: str | None = None
    destination_account_number: str | None = None  # instead of the id: the order keeps the account's id


def order_view(o: StandingOrder, time_zone: str) -> dict[str, Any]:
    """Dates are UTC dates (an occurrence is due at 00:00 UTC of its date); instants also in the customer's zone."""
    return {
        "id": o.id,
        "source_account_id": o.source_account_id,
        "destination_account_id": o.destination_account_id,
        "amount": format_minor(o.amount, o.currency),
        "currency": o.currency,
        "description": o.description,
        "frequency": o.frequency,
        "start_date": o.start_date.isoformat(),
        "end_date": o.end_date.isoformat() if o.end_date else None,
        "status": o.status,
        "next_date": o.next_date.isoformat() if o.next_date else None,
        "created_at": isoformat(o.created_at),
        "created_at_local": local_isoformat(o.created_at, time_zone),
        "time_zone": time_zone,
    }


def occurrence_view(o: StandingOrderOccurrence) -> dict[str, Any]:
    return {
        "date": o.occurrence_date.isoformat(),
        "status": o.status,
        "job_id": o.job_id,
        "transfer_id": o.transfer_id,
        "failure_code": o.failure_code,
        "reason": o.reason,
    }


def transfer_request(o: StandingOrder, day: date | None) -> TransferRequest:
    """The transfer one occurrence asks for, as a customer would through the API."""
    return TransferRequest(
        source_account_id=o.source_account_id,
        destination_account_id=o.destination_account_id,
        amount=format_minor(o.amount, o.currency),
        currency=o.currency,
        description=o.description or (f"Standing order {day.isoformat()}" if day else "Standing order"),
    )


def _check(new: NewStandingOrder, today: date) -> int:
    check_currency(new.currency)
    amount = parse_amount(new.amount, new.currency)
    if new.frequency not in FREQUENCIES:
        raise ValidationFailed("Unknown frequency.", errors={"frequency": [f"One of {', '.join(FREQUENCIES)}."]})
    if new.start_date < today:
        raise ValidationFailed(
            "The first payment cannot be in the past.", errors={"start_date": ["Today (UTC) or later."]}
        )
    if new.start_date > today + MAX_START_AHEAD:
        raise ValidationFailed("Too far ahead.", errors={"start_date": ["At most one year ahead."]})
    if new.end_date is not None and new.end_date < new.start_date:
        raise ValidationFailed("The order would end before it starts.", errors={"end_date": ["Not before start_date."]})
    if new.description is not None and len(new.description) > 500:
        raise ValidationFailed("Description too long.", errors={"description": ["At most 500 characters."]})
    return amount


def _destination_id(s: Session, new: NewStandingOrder) -> str:
    """The payee account's id, given as such or by its number (404 for a number that is no customer's account)."""
    if new.destination_account_id and new.destination_account_number:
        raise ValidationFailed("Give the destination by id or by number, not both.",
                               errors={"destination_account_id": ["Give only one of id and number."]})
    if new.destination_account_id:
        return new.destination_account_id
    if not new.destination_account_number:
        raise ValidationFailed("A destination account is required.",
                               errors={"destination_account_id": ["Give destination_account_id or _number."]})
    found = load_accounts(s, [], [new.destination_account_number]).get(new.destination_account_number)
    if found is None or found.number != new.destination_account_number or found.kind != "customer":
        raise NotFound("No such destination account.", code="account_not_found")
    return found.id


def create_standing_order(
    bank: Bank, user: User, new: NewStandingOrder, *, idempotency_key: str | None = None, body: Any = None
) -> Accepted:
    """Refused for exactly the reasons a transfer would be: the first transfer is rehearsed through the API's
    path inside a savepoint that is rolled back at once, so no rule is written twice."""
    today = utcnow().date()
    amount = _check(new, today)

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        order = StandingOrder(
            id=new_id(),
            user_id=user.id,
            source_account_id=new.source_account_id,
            destination_account_id=_destination_id(s, new),
            amount=amount,
            currency=new.currency,
            description=new.description,
            frequency=new.frequency,
            start_date=new.start_date,
            end_date=new.end_date,
            next_date=new.start_date,
            status="active",
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        check_transfer(bank, s, user, transfer_request(order, None))
        s.add(order)
        audit.record(
            s,
            user.id,
            "standing_order.created",
            f"standing_order:{order.id}",
            amount=format_minor(amount, new.currency),
            currency=new.currency,
            frequency=new.frequency,
        )
        s.flush()
        return 201, order_view(order, user.time_zone), None

    if idempotency_key is None:
        with bank.db.transaction() as s:
            status, view, _ = create(s)
        return Accepted(status, view, replayed=False)
    return accept(
        bank.db,
        user_id=user.id,
        key=idempotency_key,
        request_fingerprint=fingerprint("POST", "/api/v1/standing-orders", body),
        create=create,
        ttl_seconds=bank.settings.idempotency_ttl_seconds,
    )


def _own(s: Session, user: User, order_id: str, *, lock: bool = False) -> StandingOrder:
    valid = isinstance(order_id, str) and len(order_id) <= 36
    order = s.get(StandingOrder, order_id, with_for_update=lock) if valid else None
    if order is None or order.user_id != user.id:
        raise NotFound("No such standing order.", code="standing_order_not_found")
    return order


def get_standing_order(bank: Bank, user: User, order_id: str, *, occurrences: int = 100) -> dict[str, Any]:
    """The order with its latest occurrences, newest first."""
    with bank.db.transaction() as s:
        order = _own(s, user, order_id)
        recent = s.scalars(
            select(StandingOrderOccurrence)
            .where(StandingOrderOccurrence.order_id == order.id)
            .order_by(StandingOrderOccurrence.occurrence_date.desc())
            .limit(occurrences)
        )
        return {**order_view(order, user.time_zone), "occurrences": [occurrence_view(o) for o in recent]}


def list_standing_orders(bank: Bank, user: User, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    with bank.db.transaction() as s:
        rows, next_cursor = newest_first(
            s, select(StandingOrder).where(StandingOrder.user_id == user.id), StandingOrder, limit=limit, cursor=cursor
        )
    return {"items": [order_view(o, user.time_zone) for o in rows], "next_cursor": next_cursor}


def cancel_standing_order(bank: Bank, user: User, order_id: str) -> None:
    """No occurrence after this returns (it waits for a tick holding the order). Transfers already requested
    go their way: a scheduled one can still be cancelled as a transfer."""
    with bank.db.transaction() as s:
        order = _own(s, user, order_id, lock=True)
        if order.status != "active":
            return
        order.status, order.next_date, order.updated_at = "cancelled", None, utcnow()
        audit.record(s, user.id, "standing_order.cancelled", f"standing_order:{order.id}")
