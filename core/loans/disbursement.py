"""Approving a loan and paying it out. Approval is a job (Idempotency-Key, outbox); the worker opens the loan's own
account (core.loans.books), posts one balanced transfer of kind `disbursement` from it to the borrower, so it holds
minus the principal owed, and writes the schedule, all in one transaction with the job's terminal status. A
duplicate delivery finds the job terminal and does nothing; the loan's unique disbursement_transfer_id and
ledger_account_id and the transfer's unique job_id are the database's last guards."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core import audit, jobs
from core.bank import Bank
from core.clock import utcnow
from core.db import Database
from core.errors import Conflict, Forbidden, TransientError
from core.idempotency import Accepted, accept, fingerprint
from core.ledger import lock_accounts, post_between
from core.loans.applications import visible_loan
from core.loans.books import open_ledger_account
from core.loans.schedule import annuity_schedule, rate_from_ppm
from core.models import Account, Job, Loan, LoanInstalment, User, new_id
from core.money import format_minor
from core.users import is_staff

log = logging.getLogger(__name__)
JOB_KIND = "loan_disbursement"


def approve_loan(bank: Bank, user: User, loan_id: str, *, idempotency_key: str | None, body: Any) -> Accepted:
    """Staff: approve an applied loan; its disbursement is a job on the transfers queue."""
    if not is_staff(user):
        raise Forbidden("Only staff may approve loans.", code="forbidden")

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        loan = visible_loan(s, user, loan_id, lock=True)
        if loan.status != "applied":
            raise Conflict(f"Only an applied loan can be approved; this one is {loan.status}.", code="loan_not_applied")
        now = utcnow()
        job = jobs.new_job(
            s, kind=JOB_KIND, user_id=user.id, resource_type="loan", resource_id=loan.id, job_id=new_id()
        )
        job.attempts = 0
        loan.status, loan.decided_by, loan.decided_at, loan.updated_at = "approved", user.id, now, now
        loan.job_id, loan.failure_code, loan.reason = job.id, None, None
        jobs.enqueue(s, job)
        audit.record(
            s,
            user.id,
            "loan.approved",
            f"loan:{loan.id}",
            job_id=job.id,
            amount=format_minor(loan.principal, loan.currency),
            currency=loan.currency,
        )
        return 202, jobs.job_view(job), job.id

    return accept(
        bank.db,
        user_id=user.id,
        key=idempotency_key,
        request_fingerprint=fingerprint("POST", f"/api/v1/loans/{loan_id}/approve", body),
        create=create,
        ttl_seconds=bank.settings.idempotency_ttl_seconds,
    )


def disburse_loan(db: Database, job_id: str) -> str | None:
    """Worker: pay out the loan of job_id, once. Returns the job's status afterwards (None: no such job)."""
    try:
        with db.transaction() as s:
            # Not SKIP LOCKED: a duplicate delivery waits for the holder, then finds the job terminal.
            job = s.scalar(select(Job).where(Job.id == job_id).with_for_update())
            if job is None or job.kind != JOB_KIND or job.status in jobs.TERMINAL:
                return job.status if job else None
            job.attempts += 1
            loan = s.get(Loan, job.resource_id, with_for_update=True)
            if loan is None or loan.status != "approved" or loan.job_id != job.id:
                jobs.finish(job, "failed", error_code="invalid_state", error_message="The loan was not approved.")
                return job.status
            _pay_out(s, job, loan)
            return job.status
    except OperationalError as exc:
        raise TransientError(str(exc.orig)) from exc


def _refusal(account: Account) -> tuple[str, str] | None:
    if account.status != "active":
        return f"account_{account.status}", f"The receiving account is {account.status}."
    return None


def _pay_out(s: Session, job: Job, loan: Loan) -> None:
    destination = lock_accounts(s, loan.account_id)[loan.account_id]
    now = utcnow()
    refusal = _refusal(destination)
    if refusal:
        code, message = refusal
        loan.status, loan.failure_code, loan.updated_at = "applied", code, now  # staff may approve again later
        jobs.finish(job, "failed", error_code=code, error_message=message)
        audit.record(s, job.user_id, "loan.disbursement_failed", f"loan:{loan.id}", job_id=job.id, code=code)
        return
    source = open_ledger_account(s, loan)  # new in this transaction: nobody else can see it, let alone lock it
    transfer = post_between(s, job_id=job.id, kind="disbursement", source=source, destination=destination,
                            amount=loan.principal, description=f"Loan {loan.id}", requested_by=job.user_id, now=now)
    today = now.date()
    for item in annuity_schedule(loan.principal, rate_from_ppm(loan.annual_rate_ppm), loan.term_months, today):
        s.add(
            LoanInstalment(
                loan_id=loan.id,
                number=item.number,
                due_date=item.due_date,
                payment=item.payment,
                principal=item.principal,
                interest=item.interest,
                status="due",
            )
        )
    loan.status, loan.disbursement_transfer_id, loan.disbursed_on, loan.updated_at = "active", transfer.id, today, now
    loan.accrued_through = today
    jobs.finish(job, "succeeded", result={"loan_id": loan.id, "transfer_id": transfer.id, "status": "active",
                                          "ledger_account_id": source.id})
    audit.record(s, job.user_id, "loan.disbursed", f"loan:{loan.id}", job_id=job.id, transfer_id=transfer.id)
