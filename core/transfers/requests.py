"""Accepting money movements: the synchronous checks, then job + transfer + outbox in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, inspect, select
from sqlalchemy.orm import Session

from core import audit, jobs
from core.accounts import accounts_alongside, cash_account, load_accounts, visible_account, visible_among
from core.bank import Bank
from core.clock import as_utc, isoformat, utcnow
from core.db import queue_insert
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.local_users import confirmed
from core.models import Account, Job, Transfer, User, new_id
from core.money import check_currency, format_minor, parse_amount
from core.settings import Settings
from core.transfers import confirmation
from core.users import is_staff

MAX_SCHEDULE_AHEAD = timedelta(days=366)
TRANSFERS = cast(Table, Transfer.__table__)


@dataclass(frozen=True)
class TransferRequest:
    source_account_id: str
    amount: str
    currency: str
    destination_account_id: str | None = None
    destination_account_number: str | None = None
    description: str | None = None
    execute_at: datetime | None = None


@dataclass(frozen=True)
class MovementRequest:
    """A teller's deposit or withdrawal against the bank's cash account."""

    kind: str
    account_id: str
    amount: str
    currency: str
    description: str | None = None


def transfer_view(t: Transfer, reversed_by: str | None = None) -> dict[str, Any]:
    return {
        "id": t.id,
        "job_id": t.job_id,
        "kind": t.kind,
        "status": t.status,
        "source_account_id": t.source_account_id,
        "destination_account_id": t.destination_account_id,
        "amount": format_minor(t.amount, t.currency),
        "currency": t.currency,
        "description": t.description,
        "failure_code": t.failure_code,
        "batch_index": t.batch_index,
        "reverses": t.reverses,
        "reversed_by": reversed_by,
        "execute_at": isoformat(t.execute_at),
        "created_at": isoformat(t.created_at),
        "posted_at": isoformat(t.posted_at),
    }


def _destination(cmd: TransferRequest, accounts: dict[str, Account]) -> Account:
    if cmd.destination_account_id and cmd.destination_account_number:
        raise ValidationFailed(
            "Give the destination by id or by number, not both.",
            errors={"destination_account_id": ["Give only one of id and number."]},
        )
    if cmd.destination_account_id:
        account = accounts.get(cmd.destination_account_id)
        account = account if account is not None and account.id == cmd.destination_account_id else None
    elif cmd.destination_account_number:
        account = accounts.get(cmd.destination_account_number)
        account = account if account is not None and account.number == cmd.destination_account_number else None
    else:
        raise ValidationFailed(
            "A destination account is required.",
            errors={"destination_account_id": ["Give destination_account_id or _number."]},
        )
    if account is None or account.kind != "customer":
        raise NotFound("No such destination account.", code="account_not_found")
    return account


def check_usable(account: Account, side: str) -> None:
    if account.status == "frozen":
        raise ValidationFailed(f"The {side} account is frozen.", code="account_frozen")
    if account.status != "active":
        raise ValidationFailed(f"The {side} account is {account.status}.", code=f"account_{account.status}")


def _check_sender(bank: Bank, s: Session, source: Account, caller: User) -> None:
    # The caller was loaded for this request (and found active) a moment ago: no need to read it again, unless
    # they would be refused on it (it may come from the process's copy of users, a moment behind: core.local_users).
    if source.owner_id == caller.id:
        owner = confirmed(bank.users, caller, caller.id, lambda u: _refusal_of_sender(bank, u) is None)
    else:
        owner = s.get(User, source.owner_id) if source.owner_id else None
    refusal = _refusal_of_sender(bank, owner)
    if refusal is not None:
        raise refusal


def _refusal_of_sender(bank: Bank, owner: User | None) -> Forbidden | None:
    if owner is None or owner.status != "active":
        return Forbidden("The account holder may not move money.", code="customer_not_active")
    if bank.settings.require_kyc and owner.kyc_status != "verified":
        return Forbidden("The account holder's identity must be verified before sending money.", code="kyc_required")
    return None


def check_transfer(
    bank: Bank, s: Session, user: User, cmd: TransferRequest, accounts: dict[str, Account] | None = None
) -> tuple[Account, Account, int, datetime | None]:
    """Every rule a transfer must pass before it is accepted; writes nothing. Returns source, destination,
    amount in minor units and execute_at (UTC) or None. `accounts`: from load_accounts, when the caller has loaded
    them already (a batch loads all its items' accounts at once)."""
    if accounts is None:
        accounts = load_accounts(s, [cmd.source_account_id, cmd.destination_account_id],
                                 [cmd.destination_account_number])
    source = visible_among(accounts, user, cmd.source_account_id)
    destination = _destination(cmd, accounts)
    check_currency(cmd.currency)
    amount = parse_amount(cmd.amount, cmd.currency)
    if source.id == destination.id:
        raise ValidationFailed("Source and destination are the same account.", code="same_account")
    if source.currency != cmd.currency or destination.currency != cmd.currency:
        raise ValidationFailed("The currency must match both accounts.", code="currency_mismatch")
    check_usable(source, "source")
    check_usable(destination, "destination")
    _check_sender(bank, s, source, user)
    execute_at = as_utc(cmd.execute_at) if cmd.execute_at else None
    if execute_at and execute_at > utcnow() + MAX_SCHEDULE_AHEAD:
        raise ValidationFailed("Too far ahead.", errors={"execute_at": ["At most one year ahead."]})
    return source, destination, amount, execute_at


def request_transfer(
    bank: Bank,
    user: User,
    cmd: TransferRequest,
    *,
    idempotency_key: str | None,
    body: dict[str, Any],
    preauthorised: bool = False,
    session: Session | None = None,
) -> Accepted:
    """`preauthorised`: the customer authorised this payment in advance (a standing order's occurrence), so a
    large amount does not wait for a one-time code. `session`: accept inside the caller's transaction."""

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        source, destination, amount, execute_at = check_transfer(bank, s, user, cmd)
        now = utcnow()
        scheduled = execute_at is not None and execute_at > now
        transfer = Transfer(
            kind="transfer",
            source_account_id=source.id,
            destination_account_id=destination.id,
            amount=amount,
            currency=cmd.currency,
            description=cmd.description,
            status="scheduled" if scheduled else "pending",
            requested_by=user.id,
            execute_at=execute_at,
            created_at=now,
        )
        hold = None
        if not preauthorised and confirmation.needs_confirmation(bank.settings, transfer):
            owner = user if source.owner_id == user.id else s.get(User, source.owner_id)
            assert owner is not None  # _check_sender has refused an account without an active holder
            hold = (bank.settings, owner, destination)
        return _accepted(s, user, transfer, available_at=execute_at if scheduled else None, hold=hold)

    return accept(
        bank.db,
        user_id=user.id,
        key=idempotency_key,
        request_fingerprint=fingerprint("POST", "/api/v1/transfers", body),
        create=create,
        ttl_seconds=bank.settings.idempotency_ttl_seconds,
        session=session,
        # check_transfer's load_accounts, read with the key's look-up
        alongside=accounts_alongside([cmd.source_account_id, cmd.destination_account_id],
                                     [cmd.destination_account_number]),
    )


def request_movement(
    bank: Bank, user: User, cmd: MovementRequest, *, idempotency_key: str | None, body: dict[str, Any]
) -> Accepted:
    if not is_staff(user):
        raise Forbidden("Only staff may record deposits and withdrawals.", code="forbidden")

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        account = visible_account(s, user, cmd.account_id)
        check_currency(cmd.currency)
        amount = parse_amount(cmd.amount, cmd.currency)
        if account.currency != cmd.currency:
            raise ValidationFailed("The currency must match the account.", code="currency_mismatch")
        check_usable(account, "customer")
        cash = cash_account(s, cmd.currency)
        source, destination = (cash, account) if cmd.kind == "deposit" else (account, cash)
        transfer = Transfer(
            kind=cmd.kind,
            source_account_id=source.id,
            destination_account_id=destination.id,
            amount=amount,
            currency=cmd.currency,
            description=cmd.description or cmd.kind.capitalize(),
            status="pending",
            requested_by=user.id,
            created_at=utcnow(),
        )
        return _accepted(s, user, transfer)

    path = "/api/v1/deposits" if cmd.kind == "deposit" else "/api/v1/withdrawals"
    return accept(
        bank.db,
        user_id=user.id,
        key=idempotency_key,
        request_fingerprint=fingerprint("POST", path, body),
        create=create,
        ttl_seconds=bank.settings.idempotency_ttl_seconds,
    )


def _accepted(
    s: Session,
    user: User,
    transfer: Transfer,
    available_at: datetime | None = None,
    hold: tuple[Settings, User, Account] | None = None,
    **details: Any,
) -> tuple[int, dict[str, Any], str | None]:
    """Write the job, the transfer, its outbox row and the audit event as queued inserts: with the idempotency
    record, one statement on PostgreSQL."""
    transfer.id = transfer.id or new_id()
    job = jobs.queue_new_job(
        s,
        kind=transfer.kind,
        user_id=user.id,
        resource_type="transfer",
        resource_id=transfer.id,
        status="awaiting_confirmation" if hold is not None else "queued",
        available_at=available_at,
        enqueue=hold is None and available_at is None,
    )
    transfer.job_id = job.id
    if hold is not None:
        settings, owner, payee = hold
        confirmation.start(s, settings, owner, transfer, job, payee)
    # The attributes that were set (the columns' defaults do the rest, as the ORM would).
    queue_insert(s, TRANSFERS, {k: v for k, v in inspect(transfer).dict.items() if k in TRANSFERS.c})
    audit.queue_record(
        s,
        user.id,
        f"{transfer.kind}.requested",
        f"transfer:{transfer.id}",
        job_id=job.id,
        amount=format_minor(transfer.amount, transfer.currency),
        currency=transfer.currency,
        **details,
    )
    return 202, jobs.job_view(job), job.id


def _visible_transfer(s: Session, user: User, transfer_id: str) -> Transfer:
    t = s.get(Transfer, transfer_id) if isinstance(transfer_id, str) and len(transfer_id) <= 36 else None
    if t is None:
        raise NotFound("No such transfer.", code="transfer_not_found")
    if is_staff(user) or t.requested_by == user.id:
        return t
    source = s.get(Account, t.source_account_id)
    if source is None or source.owner_id != user.id:
        raise NotFound("No such transfer.", code="transfer_not_found")
    return t


def confirm_transfer(bank: Bank, user: User, transfer_id: str, code: str) -> Accepted:
    with bank.db.transaction() as s:
        transfer = _visible_transfer(s, user, transfer_id)
    return confirmation.confirm_transfer(bank, user, transfer, code)


def live_reversal(s: Session, transfer_id: str) -> str | None:
    """The id of the reversal of transfer_id that is pending or posted (at most one: a unique index holds it)."""
    return s.scalar(select(Transfer.id).where(Transfer.reverses == transfer_id, Transfer.status != "failed"))


def get_transfer(bank: Bank, user: User, transfer_id: str) -> dict[str, Any]:
    with bank.db.transaction() as s:
        t = _visible_transfer(s, user, transfer_id)
        return transfer_view(t, live_reversal(s, t.id))


def cancel_transfer(bank: Bank, user: User, transfer_id: str) -> dict[str, Any]:
    with bank.db.transaction() as s:
        t = _visible_transfer(s, user, transfer_id)
        s.refresh(t, with_for_update=True)
        job = s.get(Job, t.job_id, with_for_update=True)
        if t.status not in ("scheduled", "awaiting_confirmation") or job is None or job.status in jobs.TERMINAL:
            raise Conflict(f"A {t.status} transfer cannot be cancelled.", code="not_cancellable")
        t.status = "cancelled"
        t.failure_code = "cancelled"
        jobs.finish(job, "cancelled", error_code="cancelled", error_message="Cancelled by the customer.")
        audit.record(s, user.id, "transfer.cancelled", f"transfer:{t.id}")
        return transfer_view(t)


def release_due_scheduled(bank: Bank, *, limit: int = 500) -> int:
    """Beat: scheduled transfers whose time has come go to the transfers queue."""
    now = utcnow()
    with bank.db.transaction() as s:
        due = list(
            s.scalars(
                select(Transfer)
                .where(Transfer.status == "scheduled", Transfer.execute_at <= now)
                .order_by(Transfer.execute_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for t in due:
            job = s.get(Job, t.job_id)
            if job is None or job.status != "queued":
                continue
            t.status = "pending"
            job.updated_at = now
            jobs.enqueue(s, job)
        return len(due)
