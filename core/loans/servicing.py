"""Servicing a disbursed loan: daily interest accrual, collection of each instalment on its due date, overdue
instalments and their late fee, a reminder before each due date, and early repayment.

Money moves as balanced transfers between the borrower's account and the bank's own accounts (core.accounts):
- disbursement: BANKQ-LOANS -> borrower (core.loans.disbursement), so BANKQ-LOANS is minus what borrowers owe;
- interest, every day: BANKQ-LOANS -> BANKQ-INTEREST, the interest earned that day (what is owed grows by it);
- late fee, once per instalment still unpaid `BANKQ_LOAN_GRACE_DAYS` after its due date: BANKQ-LOANS -> BANKQ-FEES;
- repayment (an instalment collected on its due date, or an early repayment): borrower -> BANKQ-LOANS.
A loan repaid in full therefore leaves BANKQ-LOANS where it found it. Interest accrues on each instalment's own
period, in proportion to the days elapsed (rounded half up, never taken back), and reaches the schedule's interest
exactly on the due date. Overdue amounts accrue no further interest; the late fee is the charge for lateness.

Every change to a loan happens under its row lock, then the accounts it touches, locked in id order as posting
takes them. The beat tick can run any number of times, anywhere: accrual is guarded by the loan's accrued_through
day, a collection attempt by the instalment's status and last_attempt_on day (one attempt a day, so an overdue
instalment is retried daily), the late fee by the instalment's late_fee, a reminder by reminded_on. A transfer the
tick posts carries, in place of a job id, a key derived from what it is for (the loan, the instalment, the day),
so the unique index on transfers.job_id refuses a second copy whatever happens above it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core import audit, jobs
from core.accounts import bank_account, fees_account_number, interest_account_number, loan_account_number
from core.bank import Bank
from core.clock import utcnow
from core.db import Database
from core.errors import Conflict, Forbidden, TransientError, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.ledger import lock_accounts, post_between, post_transfer
from core.loans.applications import visible_loan
from core.loans.schedule import rate_from_ppm, rescheduled
from core.models import Account, Job, Loan, LoanInstalment, LoanProduct, Transfer, User, new_id
from core.money import format_minor, parse_amount
from core.notifications import queue_notification

log = logging.getLogger(__name__)
SERVICED = ("active", "overdue")
REPAY_KIND = "loan_repayment"
_KEYS = uuid.UUID("6f1d2b8e-3c4a-4e55-9a7b-0c2d9e8f1a35")


def posting_key(*parts: object) -> str:
    """The job_id of a transfer the tick posts: the same parts give the same key, so it posts at most once."""
    return str(uuid.uuid5(_KEYS, ":".join(str(p) for p in parts)))


@dataclass
class ServicingReport:
    loans: int = 0  # loans looked at
    accrued_minor: int = 0  # interest accrued, all currencies together (a count for logs, not money)
    collected: int = 0  # instalments paid on or after their due date
    overdue: int = 0  # collection attempts that found too little money
    late_fees: int = 0
    reminded: int = 0
    repaid: int = 0  # loans repaid in full


@dataclass
class _Books:
    """A loan under its lock: its instalments and every account its servicing may touch, locked."""

    loan: Loan
    instalments: list[LoanInstalment]
    accounts: dict[str, Account]
    customer: Account
    loans: Account
    interest: Account
    fees: Account


def _instalments(s: Session, loan: Loan) -> list[LoanInstalment]:
    return list(s.scalars(select(LoanInstalment).where(LoanInstalment.loan_id == loan.id)
                          .order_by(LoanInstalment.number).with_for_update()))


def _open_books(s: Session, loan_id: str) -> _Books | None:
    loan = s.get(Loan, loan_id, with_for_update=True, populate_existing=True)
    if loan is None or loan.status not in SERVICED:
        return None
    instalments = _instalments(s, loan)
    bank_ids = [bank_account(s, number(loan.currency)).id
                for number in (loan_account_number, interest_account_number, fees_account_number)]
    accounts = lock_accounts(s, loan.account_id, *bank_ids)
    loans, interest, fees = (accounts[i] for i in bank_ids)
    return _Books(loan, instalments, accounts, accounts[loan.account_id], loans, interest, fees)


def _accrual_targets(loan: Loan, instalments: list[LoanInstalment], today: date) -> list[tuple[LoanInstalment, int]]:
    """Each unpaid instalment with the interest that should have accrued on it by `today`: the days elapsed of its
    period times its interest, rounded half up; all of it from the due date on."""
    targets, start = [], loan.disbursed_on
    assert start is not None
    for inst in instalments:
        period_start, start = start, inst.due_date
        if inst.status == "paid":
            continue
        days = (inst.due_date - period_start).days
        elapsed = min(max((today - period_start).days, 0), days)
        if elapsed >= days:
            targets.append((inst, inst.interest))
        else:
            share = Decimal(inst.interest) * elapsed / days
            targets.append((inst, int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))))
    return targets


def _accrue(s: Session, books: _Books, today: date, now: datetime) -> int:
    """Interest up to `today` on every instalment not yet fully accrued; posts what is new. Returns it."""
    loan = books.loan
    if loan.accrued_through is not None and loan.accrued_through >= today:
        return 0
    total = 0
    for inst, target in _accrual_targets(loan, books.instalments, today):
        if target > inst.interest_accrued:
            total += target - inst.interest_accrued
            inst.interest_accrued = target
    loan.accrued_through = today
    if total:
        post_between(s, job_id=posting_key("accrual", loan.id, today), kind="interest_accrual", source=books.loans,
                     destination=books.interest, amount=total, description=f"Interest on loan {loan.id} to {today}",
                     requested_by=loan.user_id, now=now)
    return total


def _owed(inst: LoanInstalment) -> int:
    return inst.payment + inst.late_fee - inst.interest_paid


def _collect(s: Session, bank: Bank, books: _Books, today: date, now: datetime, report: ServicingReport) -> None:
    """Instalments due by today, oldest first, each collected once; the first that cannot be paid stops the rest."""
    loan, customer = books.loan, books.customer
    product = s.get(LoanProduct, loan.product_id)
    late_fee = product.late_fee if product else 0
    for inst in books.instalments:
        if inst.status == "paid":
            continue
        if inst.due_date > today:
            break
        grace_over = today >= inst.due_date + timedelta(days=bank.settings.loan_grace_days)
        if inst.status == "overdue" and grace_over and inst.late_fee == 0 and late_fee > 0:
            post_between(s, job_id=posting_key("late_fee", loan.id, inst.number), kind="late_fee",
                         source=books.loans, destination=books.fees, amount=late_fee,
                         description=f"Late fee, loan {loan.id} instalment {inst.number}", requested_by=loan.user_id,
                         now=now)
            inst.late_fee = late_fee
            report.late_fees += 1
            audit.record(s, None, "loan.late_fee_charged", f"loan:{loan.id}", instalment=inst.number,
                         amount=format_minor(late_fee, loan.currency))
        if inst.last_attempt_on == today:
            break  # one attempt a day
        inst.last_attempt_on = today
        owed = _owed(inst)
        if customer.status == "active" and customer.balance >= owed:
            post_between(s, job_id=posting_key("instalment", loan.id, inst.number), kind="loan_repayment",
                         source=customer, destination=books.loans, amount=owed,
                         description=f"Loan {loan.id} instalment {inst.number}", requested_by=loan.user_id, now=now)
            inst.status, inst.paid_at = "paid", now
            loan.principal_paid += inst.principal
            report.collected += 1
            audit.record(s, None, "loan.instalment_paid", f"loan:{loan.id}", instalment=inst.number,
                         amount=format_minor(owed, loan.currency))
            continue
        if inst.status != "overdue":
            audit.record(s, None, "loan.instalment_overdue", f"loan:{loan.id}", instalment=inst.number,
                         amount=format_minor(owed, loan.currency))
        inst.status = "overdue"
        report.overdue += 1
        break


def _settle_status(s: Session, books: _Books, now: datetime, report: ServicingReport) -> None:
    loan = books.loan
    statuses = {i.status for i in books.instalments}
    status = "repaid" if statuses <= {"paid"} else "overdue" if "overdue" in statuses else "active"
    if status != loan.status:
        loan.status, loan.updated_at = status, now
        if status == "repaid":
            report.repaid += 1
            audit.record(s, None, "loan.repaid", f"loan:{loan.id}")


def _remind(s: Session, bank: Bank, books: _Books, today: date, report: ServicingReport) -> None:
    """One email per instalment, `loan_reminder_days` before its due date (the reminder template)."""
    loan, lead = books.loan, timedelta(days=bank.settings.loan_reminder_days)
    if not lead:
        return
    owner = s.get(User, loan.user_id)
    if owner is None or owner.status == "closed":
        return
    for inst in books.instalments:
        if inst.status != "due" or inst.reminded_on is not None or not inst.due_date - lead <= today < inst.due_date:
            continue
        owed = format_minor(_owed(inst), loan.currency)
        message = (f"Your loan instalment of {owed} {loan.currency} is due on {inst.due_date.isoformat()}. It is "
                   f"collected from account {books.customer.number} that day: please make sure the money is there.")
        queue_notification(s, user=owner, channel="email", template="reminder", context={"message": message},
                           notification_id=posting_key("reminder", loan.id, inst.number, inst.due_date, owed))
        inst.reminded_on = today
        report.reminded += 1


def service_loans(bank: Bank, *, today: date | None = None, batch_size: int = 100) -> ServicingReport:
    """Beat: accrue interest to today, remind, collect what is due, charge late fees, for every active or overdue
    loan. Each loan in its own transaction; any number of concurrent runs double nothing."""
    report = ServicingReport()
    after = ""
    while True:
        now = utcnow()
        day = today or now.date()
        with bank.db.transaction() as s:
            ids = list(s.scalars(select(Loan.id).where(Loan.status.in_(SERVICED), Loan.id > after)
                                 .order_by(Loan.id).limit(batch_size)))
        for loan_id in ids:
            with bank.db.transaction() as s:
                books = _open_books(s, loan_id)
                if books is None:
                    continue
                report.loans += 1
                report.accrued_minor += _accrue(s, books, day, now)
                _remind(s, bank, books, day, report)
                _collect(s, bank, books, day, now, report)
                _settle_status(s, books, now, report)
        if len(ids) < batch_size:
            return report
        after = ids[-1]


def _payoff(loan: Loan, instalments: list[LoanInstalment], today: date) -> tuple[int, int]:
    """(interest accrued by today and not yet paid, principal outstanding): what repaying in full costs today."""
    interest = sum(max(target, i.interest_accrued) - i.interest_paid
                   for i, target in _accrual_targets(loan, instalments, today))
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
        interest, principal = _payoff(loan, _instalments(s, loan), utcnow().date())
        if minor > interest + principal:
            most = format_minor(interest + principal, loan.currency)
            raise ValidationFailed("The amount is more than the loan's payoff.", code="amount_exceeds_payoff",
                                   errors={"amount": [f"At most {most} today (principal and interest to date)."]})
        now = utcnow()
        job = jobs.new_job(s, kind=REPAY_KIND, user_id=user.id, resource_type="loan", resource_id=loan.id,
                           job_id=new_id())
        pool = bank_account(s, loan_account_number(loan.currency))
        s.add(Transfer(id=new_id(), job_id=job.id, kind="loan_repayment", source_account_id=loan.account_id,
                       destination_account_id=pool.id, amount=minor, currency=loan.currency,
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
            books = _open_books(s, str(job.resource_id))
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


def _repay(s: Session, books: _Books, job: Job, transfer: Transfer) -> None:
    loan, now = books.loan, utcnow()
    today = now.date()
    _accrue(s, books, today, now)
    interest, principal = _payoff(loan, books.instalments, today)
    amount = min(transfer.amount, interest + principal)  # a collection since the request may have lowered it
    if books.customer.status != "active":
        _refuse(job, transfer, f"account_{books.customer.status}", f"The paying account is {books.customer.status}.")
        return
    if amount <= 0 or books.customer.balance < amount:
        _refuse(job, transfer, "insufficient_funds", "The account does not hold the amount: nothing was repaid.")
        return
    transfer.amount = amount
    post_transfer(s, transfer, books.customer, books.loans, now)
    unpaid = [i for i in books.instalments if i.status != "paid"]
    to_interest = min(amount, interest)
    for inst in unpaid:  # interest first, oldest first
        part = min(to_interest, inst.interest_accrued - inst.interest_paid)
        inst.interest_paid += part
        to_interest -= part
    to_principal = amount - min(amount, interest)
    loan.principal_paid += to_principal
    _reschedule(s, books, unpaid, to_principal, today, now)
    _settle_status(s, books, now, ServicingReport())
    jobs.finish(job, "succeeded", result={
        "loan_id": loan.id, "transfer_id": transfer.id, "amount": format_minor(amount, loan.currency),
        "status": loan.status, "outstanding": format_minor(loan.principal - loan.principal_paid, loan.currency),
    })
    audit.record(s, job.user_id, "loan.repaid_early", f"loan:{loan.id}", job_id=job.id, transfer_id=transfer.id,
                 amount=format_minor(amount, loan.currency))


def _reschedule(s: Session, books: _Books, unpaid: list[LoanInstalment], to_principal: int, today: date,
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
