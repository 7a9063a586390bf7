"""Large transfers wait for a one-time code bound to their amount and payee before they are posted.

At or above BANKQ_CONFIRMATION_THRESHOLD (in the transfer's currency) the job is `awaiting_confirmation` and a
code goes to the account holder. The right code releases the job to the transfers queue; five wrong codes fail it
with `confirmation_failed`; ten minutes without a code fail it with `confirmation_expired` (a beat sweep enforces
that even if nobody asks)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, jobs, otp
from core.bank import Bank
from core.clock import as_utc, utcnow
from core.db import Recorded
from core.errors import Conflict, Forbidden, Gone, RateLimited
from core.idempotency import Accepted
from core.models import Account, Job, Transfer, User
from core.money import CURRENCIES, format_minor
from core.settings import Settings

WINDOW = otp.CODE_TTL


def threshold_minor(settings: Settings, currency: str) -> int:
    return int(Decimal(settings.confirmation_threshold) * (10 ** CURRENCIES[currency]))


def needs_confirmation(settings: Settings, transfer: Transfer) -> bool:
    return transfer.kind == "transfer" and transfer.amount >= threshold_minor(settings, transfer.currency)


def binding(transfer: Transfer) -> str:
    """What the code authorises: this transfer, this amount, this payee. A code for anything else fails."""
    return f"{transfer.id}|{transfer.amount}|{transfer.currency}|{transfer.destination_account_id}"


def start(s: Session, settings: Settings, owner: User, transfer: Transfer, job: Job, payee: Account) -> None:
    """In the accepting transaction: hold the job and send the account holder a code."""
    transfer.status = job.status = "awaiting_confirmation"
    otp.issue_code(
        s,
        settings,
        owner,
        purpose="transfer",
        channel="sms" if owner.phone else "email",
        subject_id=transfer.id,
        binding=binding(transfer),
        template="transfer_confirmation",
        context={
            "amount": format_minor(transfer.amount, transfer.currency),
            "currency": transfer.currency,
            "payee": f"account ending {payee.number[-4:]}",
        },
    )


def confirm_transfer(bank: Bank, user: User, transfer: Transfer, code: str) -> Accepted:
    """Check the code; the right one releases the job. A wrong one is counted even though the request fails."""
    now = utcnow()
    with bank.db.transaction() as s:
        t = s.get(Transfer, transfer.id, with_for_update=True)
        job = s.get(Job, transfer.job_id, with_for_update=True)
        if t is None or job is None or t.status != "awaiting_confirmation" or job.status != "awaiting_confirmation":
            raise Conflict(f"A {t.status if t else 'missing'} transfer needs no confirmation.", code="not_confirmable")
        source = s.get(Account, t.source_account_id)
        if source is None or source.owner_id != user.id:
            raise Forbidden("Only the account holder can confirm this transfer.", code="not_account_holder")
        if _expired(t, now):
            _fail(s, t, job, "confirmation_expired", "The transfer was not confirmed within 10 minutes.")
            raise Recorded(Gone("The confirmation window has closed.", code="confirmation_expired"))
        try:
            otp.verify_for_subject(
                s, bank.settings, user, purpose="transfer", subject_id=t.id, code=code, binding=binding(t)
            )
        except otp.CodeRejected as exc:
            if exc.extra.get("attempts_remaining", 1) <= 0:
                _fail(s, t, job, "confirmation_failed", "Too many wrong confirmation codes.")
            raise Recorded(exc) from None
        except RateLimited as exc:
            _fail(s, t, job, "confirmation_failed", "Too many wrong confirmation codes.")
            raise Recorded(exc) from None
        except Gone as exc:
            _fail(s, t, job, "confirmation_expired", "The confirmation code expired.")
            raise Recorded(exc) from None
        return _release(s, user, t, job, now)


def _release(s: Session, user: User, t: Transfer, job: Job, now: datetime) -> Accepted:
    scheduled = t.execute_at is not None and as_utc(t.execute_at) > now
    t.status = "scheduled" if scheduled else "pending"
    job.status, job.updated_at = "queued", now
    if not scheduled:
        jobs.enqueue(s, job)
    audit.record(s, user.id, "transfer.confirmed", f"transfer:{t.id}")
    return Accepted(202, jobs.job_view(job), replayed=False)


def _expired(t: Transfer, now: datetime) -> bool:
    return as_utc(t.created_at) + WINDOW <= now


def _fail(s: Session, t: Transfer, job: Job, code: str, message: str) -> None:
    t.status, t.failure_code = "failed", code
    jobs.finish(job, "failed", error_code=code, error_message=message, result={"transfer_id": t.id, "status": "failed"})
    audit.record(s, None, f"transfer.{code}", f"transfer:{t.id}")


def expire_unconfirmed(bank: Bank, *, limit: int = 500) -> int:
    """Beat: transfers still waiting for their code after the window fail, whether or not anyone asks."""
    now = utcnow()
    with bank.db.transaction() as s:
        waiting = list(
            s.scalars(
                select(Transfer)
                .where(Transfer.status == "awaiting_confirmation", Transfer.created_at <= now - WINDOW)
                .order_by(Transfer.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for t in waiting:
            job = s.get(Job, t.job_id, with_for_update=True)
            if job is not None and job.status == "awaiting_confirmation":
                _fail(s, t, job, "confirmation_expired", "The transfer was not confirmed within 10 minutes.")
        return len(waiting)
