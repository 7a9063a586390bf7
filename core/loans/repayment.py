"""Early repayment: the borrower repays in part or in full, as a job on the transfers queue. The worker brings
interest up to today, takes the amount from the borrower's account into the loan's own account (interest accrued to
date first, then principal: core.loans.books) and recomputes the unpaid instalments as a new annuity over the same
due dates; the whole payoff makes the loan `repaid`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core import audit, jobs
from core.bank import Bank
from core.clock import utcnow
from core.db import Database
from core.errors import Conflict, Forbidden, TransientError, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.loans.applications import visible_loan
from core.loans.books import Books, instalments_of, open_books, outstanding, receive_payment
from core.loans.schedule import rate_from_ppm, rescheduled
from core.loans.servicing import ServicingReport, accrual_targets, accrue, settle_status
from core.models import Job, Loan, LoanInstalment, Transfer, User, new_id
from core.money import format_minor, parse_amount

REPAY_KIND = "loan_repayment"


def _payoff(loan: Loan, instalments: list[LoanInstalment], today: date) -> tuple[int, int]:
    """(interest accrued by today and not yet paid, principal outstanding): what repaying in full costs today."""
    interest = sum(max(target, i.interest_accrued) - i.interest_paid
                   for i, target in accrual_targets(loan, instalments, today))
    return interest, loan.principal - loan.principal_paid


def request_repayment(bank: Bank, user: User, loan_id: str, *, amount: object, idempotency_key: str | None,
                      body: Any) -> Accepted:
    """The borrower repays early, in part or in full: a job on the transfers queue."""

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        loan = visible_loan(s, user, loan_id, lock=True)
        if loan.user_id != user.id:
            raise Forbidden("Only the borrower repays a loan.", code="forbidden")
        if loan.status == "overdue":
            raise Conflict("The loan has an overdue instalment: it is collected first, then you may repay early.",
                           code="loan_overdue")
        if loan.status != "active":
            raise Conflict(f"Only an active loan can be repaid; this one is {loan.status}.", code="loan_not_active")
        minor = parse_amount(amount, loan.currency)
        interest, principal = _payoff(loan, instalments_of(s, loan), utcnow().date())
        if minor > interest + principal:
            most = format_minor(interest + principal, loan.currency)
            raise ValidationFailed("The amount is more than the loan's payoff.", code="amount_exceeds_payoff",
                                   errors={"amount": [f"At most {most} today (principal and interest to date)."]})
        now = utcnow()
        job = jobs.new_job(s, kind=REPAY_KIND, user_id=user.id, resource_type="loan", resource_id=loan.id,
                           job_id=new_id())
        assert loan.ledger_account_id is not None  # every active loan has its account (the loans_ledger_account CHECK)
        s.add(Transfer(id=new_id(), job_id=job.id, kind="loan_repayment", source_account_id=loan.account_id,
                       destination_account_id=loan.ledger_account_id, amount=minor, currency=loan.currency,
                       description=f"Early repayment, loan {loan.id}", status="pending", requested_by=user.id,
                       created_at=now))
        jobs.enqueue(s, job)
        audit.record(s, user.id, "loan.repayment_requested", f"loan:{loan.id}", job_id=job.id,
                     amount=format_minor(minor, loan.currency))
        return 202, jobs.job_view(job), job.id

    return accept(bank.db, user_id=user.id, key=idempotency_key,
                  request_fingerprint=fingerprint("POST", f"/api/v1/loans/{loan_id}/repay", body),
                  create=create, ttl_seconds=bank.settings.idempotency_ttl_seconds)


def repay_loan(db: Database, job_id: str) -> str | None:
    """Worker: post the early repayment of job_id, once, and reschedule what is left. Returns the job's status."""
    try:
        with db.transaction() as s:
            job = s.scalar(select(Job).where(Job.id == job_id).with_for_update())
            if job is None or job.kind != REPAY_KIND or job.status in jobs.TERMINAL:
                return job.status if job else None
            job.attempts += 1
            transfer = s.scalar(select(Transfer).where(Transfer.job_id == job.id).with_for_update())
            books = open_books(s, str(job.resource_id))
            if transfer is None or books is None or books.loan.status != "active":
                _refuse(job, transfer, "loan_not_active", "The loan is no longer active: nothing was repaid.")
                return job.status
            _repay(s, books, job, transfer)
            return job.status
    except OperationalError as exc:
        raise TransientError(str(exc.orig)) from exc


def _refuse(job: Job, transfer: Transfer | None, code: str, message: str) -> None:
    if transfer is not None:
        transfer.status, transfer.failure_code = "failed", code
    jobs.finish(job, "failed", error_code=code, error_message=message)


def _repay(s: Session, books: Books, job: Job, transfer: Transfer) -> None:
    loan, now = books.loan, utcnow()
    today = now.date()
    accrue(s, books, today, now)
    # What the charges receivable holds for this loan: the interest accrued and not yet paid. (_payoff's estimate
    # may run ahead of it on a day whose accrual was done before an earlier repayment rescheduled the instalment.)
    interest = sum(i.interest_accrued - i.interest_paid for i in books.instalments if i.status != "paid")
    principal = outstanding(books.loan_account)
    amount = min(transfer.amount, interest + principal)  # a collection since the request may have lowered it
    if books.customer.status != "active":
        _refuse(job, transfer, f"account_{books.customer.status}", f"The paying account is {books.customer.status}.")
        return
    if amount <= 0 or books.customer.balance < amount:
        _refuse(job, transfer, "insufficient_funds", "The account does not hold the amount: nothing was repaid.")
        return
    transfer.amount = amount
    to_interest = min(amount, interest)
    receive_payment(s, books, transfer, to_interest, now)
    unpaid = [i for i in books.instalments if i.status != "paid"]
    for inst in unpaid:  # interest first, oldest first
        part = min(to_interest, inst.interest_accrued - inst.interest_paid)
        inst.interest_paid += part
        to_interest -= part
    to_principal = amount - min(amount, interest)
    loan.principal_paid += to_principal
    _reschedule(s, books, unpaid, to_principal, today, now)
    settle_status(s, books, now, ServicingReport())
    jobs.finish(job, "succeeded", result={
        "loan_id": loan.id, "transfer_id": transfer.id, "amount": format_minor(amount, loan.currency),
        "status": loan.status, "outstanding": format_minor(outstanding(books.loan_account), loan.currency),
    })
    audit.record(s, job.user_id, "loan.repaid_early", f"loan:{loan.id}", job_id=job.id, transfer_id=transfer.id,
                 amount=format_minor(amount, loan.currency))


def _reschedule(s: Session, books: Books, unpaid: list[LoanInstalment], to_principal: int, today: date,
                now: datetime) -> None:
    """After an early repayment. In part: what is left is spread over the remaining due dates as a new annuity. In
    full: the current instalment becomes what was paid now (the interest to date and the principal cleared) and
    the later ones are dropped."""
    loan = books.loan
    balance = loan.principal - loan.principal_paid
    if not unpaid:
        return
    current, later = unpaid[0], unpaid[1:]
    if balance == 0:
        for inst in later:
            s.delete(inst)
        books.instalments = [i for i in books.instalments if i not in later]
        current.principal, current.interest = to_principal, current.interest_paid
        current.interest_accrued = current.interest_paid
        current.payment = current.principal + current.interest
        current.status, current.paid_at = "paid", now
        return
    previous = [i for i in books.instalments if i.number < current.number]
    period_start = previous[-1].due_date if previous else loan.disbursed_on
    assert period_start is not None
    parts = rescheduled(balance, rate_from_ppm(loan.annual_rate_ppm), len(unpaid),
                        days_left=max(0, (current.due_date - today).days),
                        period_days=max(1, (current.due_date - period_start).days))
    for inst, (principal, interest) in zip(unpaid, parts, strict=True):
        already = inst.interest_accrued if inst is current else 0  # accrued, and paid just now
        inst.principal, inst.interest = principal, interest + already
        inst.payment = inst.principal + inst.interest
        inst.interest_accrued = min(inst.interest_accrued, inst.interest)
        inst.reminded_on = None
