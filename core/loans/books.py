"""A loan's books: its own account in the ledger and the bank's accounts its servicing moves money between.

Every loan, once disbursed, has an internal account of its own (type `loan`, number BANKQ-LOAN-<id>) whose balance
is minus the principal the borrower still owes, in the ledger's sign convention where what the bank owes a customer
is positive and what is owed to the bank negative (as BANKQ-CASH is). So the loan's `outstanding` is read off the
ledger, and the admin ledger check (core.ledger) proves the two agree. Interest and late fees are owed on top of the
principal; they are on the bank's loan charges receivable, BANKQ-LOAN-CHARGES-<currency>, until paid:

- disbursement: loan account -> borrower, the principal;
- interest, every day: BANKQ-LOAN-CHARGES -> BANKQ-INTEREST, what accrued that day;
- late fee, once per instalment: BANKQ-LOAN-CHARGES -> BANKQ-FEES;
- repayment (an instalment on its due date, or early): borrower -> loan account, the whole amount, one transfer on
  the borrower's statement; then loan account -> BANKQ-LOAN-CHARGES (kind `charges_paid`), the part of it that paid
  interest and fees. What stays on the loan's account is the principal repaid.

A loan repaid in full leaves its account at zero and the charges receivable where it found it. Every posting has
two entries summing to zero, like every other in the ledger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import bank_account, fees_account_number, interest_account_number, loan_charges_account_number
from core.ledger import lock_accounts, post_between, post_transfer
from core.models import Account, Loan, LoanInstalment, Transfer

SERVICED = ("active", "overdue")
_KEYS = uuid.UUID("6f1d2b8e-3c4a-4e55-9a7b-0c2d9e8f1a35")


def posting_key(*parts: object) -> str:
    """The job_id of a transfer servicing posts: the same parts give the same key, so the unique index on
    transfers.job_id refuses a second copy whatever happens above it."""
    return str(uuid.uuid5(_KEYS, ":".join(str(p) for p in parts)))


def ledger_account_number(loan_id: str) -> str:
    """The loan's account number: derived from the loan's id, so the migration that opened accounts for loans
    disbursed before they had one (0025) names them the same way."""
    return f"BANKQ-LOAN-{loan_id.replace('-', '')[:20].upper()}"


def open_ledger_account(s: Session, loan: Loan) -> Account:
    """The loan's own account, opened (in the caller's transaction) as it is disbursed."""
    account = Account(number=ledger_account_number(loan.id), currency=loan.currency, type="loan", kind="internal",
                      owner_id=None)
    s.add(account)
    s.flush()
    loan.ledger_account_id = account.id
    return account


def outstanding(account: Account | None) -> int:
    """The principal still owed on a loan, from its account's balance (0 before it is disbursed)."""
    return -account.balance if account is not None else 0


@dataclass
class Books:
    """A loan under its row lock: its instalments and every account its servicing may touch, locked."""

    loan: Loan
    instalments: list[LoanInstalment]
    customer: Account  # the borrower's account: receives the loan, pays the instalments
    loan_account: Account  # the loan's own account: minus the principal owed
    charges: Account  # BANKQ-LOAN-CHARGES: minus the interest and fees owed, all loans of the currency together
    interest: Account
    fees: Account


def instalments_of(s: Session, loan: Loan) -> list[LoanInstalment]:
    return list(s.scalars(select(LoanInstalment).where(LoanInstalment.loan_id == loan.id)
                          .order_by(LoanInstalment.number).with_for_update()))


def open_books(s: Session, loan_id: str) -> Books | None:
    """Lock a serviced loan, then its instalments, then its accounts in id order (as posting takes them)."""
    loan = s.get(Loan, loan_id, with_for_update=True, populate_existing=True)
    if loan is None or loan.status not in SERVICED or loan.ledger_account_id is None:
        return None
    instalments = instalments_of(s, loan)
    numbers = [number(loan.currency)
               for number in (loan_charges_account_number, interest_account_number, fees_account_number)]
    bank_ids = dict(s.execute(select(Account.number, Account.id).where(Account.number.in_(numbers))).all())
    if len(bank_ids) < len(numbers):
        bank_account(s, next(n for n in numbers if n not in bank_ids))  # raises: run the set-up
    accounts = lock_accounts(s, loan.account_id, loan.ledger_account_id, *bank_ids.values())
    charges, interest, fees = (accounts[bank_ids[n]] for n in numbers)
    return Books(loan, instalments, accounts[loan.account_id], accounts[loan.ledger_account_id], charges, interest,
                 fees)


def collect_payment(s: Session, books: Books, *, job_id: str, amount: int, charges_part: int, description: str,
                    now: datetime) -> Transfer:
    """A repayment the bank collects (an instalment): posted at once, borrower -> loan account, then on to the
    charges receivable for the part of it that pays interest and fees. The caller has checked the funds."""
    payment = post_between(s, job_id=job_id, kind="loan_repayment", source=books.customer,
                           destination=books.loan_account, amount=amount, description=description,
                           requested_by=books.loan.user_id, now=now)
    _settle_charges(s, books, payment, charges_part, now)
    return payment


def receive_payment(s: Session, books: Books, payment: Transfer, charges_part: int, now: datetime) -> None:
    """Post a pending repayment the borrower asked for (an early one) the same way as collect_payment."""
    post_transfer(s, payment, books.customer, books.loan_account, now)
    _settle_charges(s, books, payment, charges_part, now)


def _settle_charges(s: Session, books: Books, payment: Transfer, charges_part: int, now: datetime) -> None:
    assert 0 <= charges_part <= payment.amount
    if charges_part:
        post_between(s, job_id=posting_key("charges_paid", payment.id), kind="charges_paid",
                     source=books.loan_account, destination=books.charges, amount=charges_part,
                     description=f"Interest and fees paid, loan {books.loan.id}", requested_by=payment.requested_by,
                     now=now)
