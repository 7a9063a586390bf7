"""Servicing a disbursed loan, the beat tick: daily interest accrual, collection of each instalment on its due date,
overdue instalments and their late fee, and a reminder before each due date. (Early repayment: core.loans.repayment.)

Money moves as balanced transfers between the borrower's account, the loan's own account and the bank's accounts,
as core.loans.books describes. Interest accrues on each instalment's own period, in proportion to the days elapsed
(rounded half up, never taken back), and reaches the schedule's interest exactly on the due date. Overdue amounts
accrue no further interest; the late fee is the charge for lateness.

Every change to a loan happens under its row lock, then the accounts it touches, locked in id order as posting
takes them. The beat tick can run any number of times, anywhere: accrual is guarded by the loan's accrued_through
day, a collection attempt by the instalment's status and last_attempt_on day (one attempt a day, so an overdue
instalment is retried daily), the late fee by the instalment's late_fee, a reminder by reminded_on. A transfer the
tick posts carries, in place of a job id, a key derived from what it is for (books.posting_key), so the unique index
on transfers.job_id refuses a second copy whatever happens above it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.bank import Bank
from core.clock import utcnow
from core.ledger import post_between
from core.loans.books import SERVICED, Books, collect_payment, open_books, posting_key
from core.models import Loan, LoanInstalment, LoanProduct, User
from core.money import format_minor
from core.notifications import queue_notification

log = logging.getLogger(__name__)


@dataclass
class ServicingReport:
    loans: int = 0  # loans looked at
    accrued_minor: int = 0  # interest accrued, all currencies together (a count for logs, not money)
    collected: int = 0  # instalments paid on or after their due date
    overdue: int = 0  # collection attempts that found too little money
    late_fees: int = 0
    reminded: int = 0
    repaid: int = 0  # loans repaid in full


def accrual_targets(loan: Loan, instalments: list[LoanInstalment], today: date) -> list[tuple[LoanInstalment, int]]:
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


def accrue(s: Session, books: Books, today: date, now: datetime) -> int:
    """Interest up to `today` on every instalment not yet fully accrued; posts what is new. Returns it."""
    loan = books.loan
    if loan.accrued_through is not None and loan.accrued_through >= today:
        return 0
    total = 0
    for inst, target in accrual_targets(loan, books.instalments, today):
        if target > inst.interest_accrued:
            total += target - inst.interest_accrued
            inst.interest_accrued = target
    loan.accrued_through = today
    if total:
        post_between(s, job_id=posting_key("accrual", loan.id, today), kind="interest_accrual", source=books.charges,
                     destination=books.interest, amount=total, description=f"Interest on loan {loan.id} to {today}",
                     requested_by=loan.user_id, now=now)
    return total


def _owed(inst: LoanInstalment) -> int:
    """What collecting the instalment takes: its payment and late fee, less interest paid ahead of time."""
    return inst.payment + inst.late_fee - inst.interest_paid


def _collect(s: Session, bank: Bank, books: Books, today: date, now: datetime, report: ServicingReport) -> None:
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
                         source=books.charges, destination=books.fees, amount=late_fee,
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
            if owed:  # nothing to post when a reschedule left an instalment of 0 (a tiny balance at 0 %)
                collect_payment(s, books, job_id=posting_key("instalment", loan.id, inst.number), amount=owed,
                                charges_part=owed - inst.principal,
                                description=f"Loan {loan.id} instalment {inst.number}", now=now)
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


def settle_status(s: Session, books: Books, now: datetime, report: ServicingReport) -> None:
    loan = books.loan
    statuses = {i.status for i in books.instalments}
    status = "repaid" if statuses <= {"paid"} else "overdue" if "overdue" in statuses else "active"
    if status != loan.status:
        loan.status, loan.updated_at = status, now
        if status == "repaid":
            report.repaid += 1
            audit.record(s, None, "loan.repaid", f"loan:{loan.id}")


def _remind(s: Session, bank: Bank, books: Books, today: date, report: ServicingReport) -> None:
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
                books = open_books(s, loan_id)
                if books is None:
                    continue
                report.loans += 1
                report.accrued_minor += accrue(s, books, day, now)
                _remind(s, bank, books, day, report)
                _collect(s, bank, books, day, now, report)
                settle_status(s, books, now, report)
        if len(ids) < batch_size:
            return report
        after = ids[-1]
