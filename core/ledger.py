"""The ledger: posting one balanced transfer between two locked accounts, and the check that every balance equals
the sum of its entries, every currency sums to zero, and every loan's books agree with the loan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.accounts import loan_charges_account_number
from core.db import Database
from core.models import Account, Entry, Loan, LoanInstalment, Transfer, new_id
from core.money import CURRENCIES, format_minor


def lock_accounts(s: Session, *account_ids: str) -> dict[str, Account]:
    """Lock accounts in id order, as posting takes them, so concurrent postings never deadlock."""
    ids = sorted(set(account_ids))
    return {a.id: a for a in s.scalars(select(Account).where(Account.id.in_(ids)).order_by(Account.id)
                                       .with_for_update())}


def post_between(
    s: Session, *, job_id: str, kind: str, source: Account, destination: Account, amount: int, description: str,
    requested_by: str, now: datetime,
) -> Transfer:
    """A posted transfer of `amount` from source to destination with its two entries; both accounts must be locked
    (lock_accounts). The caller has checked that the source may pay it."""
    transfer = Transfer(
        id=new_id(), job_id=job_id, kind=kind, source_account_id=source.id, destination_account_id=destination.id,
        amount=amount, currency=source.currency, description=description, status="pending",
        requested_by=requested_by, created_at=now,
    )
    s.add(transfer)
    s.flush()  # entries refer to it; the ORM has no relationship to order the inserts by
    return post_transfer(s, transfer, source, destination, now)


def post_transfer(s: Session, transfer: Transfer, source: Account, destination: Account, now: datetime) -> Transfer:
    """Post a pending transfer between its two locked accounts: balances and entries."""
    source.balance -= transfer.amount
    destination.balance += transfer.amount
    for account, delta in ((source, -transfer.amount), (destination, transfer.amount)):
        s.add(Entry(transfer_id=transfer.id, account_id=account.id, currency=transfer.currency, amount=delta,
                    balance_after=account.balance, description=transfer.description, posted_at=now))
    transfer.status, transfer.posted_at = "posted", now
    return transfer


def check_ledger(db: Database) -> dict[str, Any]:
    with db.transaction() as s:
        if db.is_postgres:  # one snapshot for every query below, so postings committed meanwhile cannot look wrong
            s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        sums = dict(s.execute(select(Entry.account_id, func.sum(Entry.amount)).group_by(Entry.account_id)).all())
        accounts = s.execute(select(Account.id, Account.number, Account.currency, Account.balance, Account.kind)).all()
        per_currency = s.execute(select(Entry.currency, func.sum(Entry.amount)).group_by(Entry.currency)).all()
        unbalanced = s.execute(
            select(Entry.transfer_id, func.sum(Entry.amount))
            .group_by(Entry.transfer_id)
            .having(func.sum(Entry.amount) != 0)
        ).all()
        loans = _loan_mismatches(s)
    mismatches: list[dict[str, Any]] = []
    for account_id, number, currency, balance, kind in accounts:
        total = int(sums.get(account_id) or 0)
        if total != balance:
            mismatches.append(
                {
                    "type": "balance_mismatch",
                    "account_id": account_id,
                    "number": number,
                    "balance": format_minor(balance, currency),
                    "entries_sum": format_minor(total, currency),
                }
            )
        if kind == "customer" and balance < 0:
            mismatches.append(
                {
                    "type": "negative_balance",
                    "account_id": account_id,
                    "number": number,
                    "balance": format_minor(balance, currency),
                }
            )
    for currency, total in per_currency:
        if int(total or 0) != 0:
            mismatches.append(
                {"type": "currency_not_balanced", "currency": currency, "sum": format_minor(int(total), currency)}
            )
    for transfer_id, total in unbalanced:
        mismatches.append({"type": "posting_not_balanced", "transfer_id": transfer_id, "sum": int(total)})
    mismatches += loans
    return {"ok": not mismatches, "accounts_checked": len(accounts), "mismatches": mismatches}


def _loan_mismatches(s: Session) -> list[dict[str, Any]]:
    """Each loan's account holds minus the principal still owed on it (core.loans.books), and each currency's loan
    charges receivable minus the interest accrued and the late fees charged on its loans' unpaid instalments."""
    found: list[dict[str, Any]] = []
    owed_principal = Loan.principal - Loan.principal_paid
    for loan_id, owed, account_id, number, balance, currency in s.execute(
        select(Loan.id, owed_principal, Account.id, Account.number, Account.balance, Account.currency)
        .join(Account, Account.id == Loan.ledger_account_id)
        .where(Account.balance != -owed_principal)
    ):
        found.append({"type": "loan_account_mismatch", "loan_id": loan_id, "account_id": account_id,
                      "number": number, "balance": format_minor(balance, currency),
                      "outstanding": format_minor(owed, currency)})
    charges_owed = dict(s.execute(
        select(Loan.currency, func.sum(LoanInstalment.interest_accrued - LoanInstalment.interest_paid
                                       + LoanInstalment.late_fee))
        .join(LoanInstalment, LoanInstalment.loan_id == Loan.id)
        .where(LoanInstalment.status != "paid")
        .group_by(Loan.currency)
    ).all())
    numbers = {loan_charges_account_number(c): c for c in CURRENCIES}
    for number, balance, currency in s.execute(
        select(Account.number, Account.balance, Account.currency).where(Account.number.in_(numbers))
    ):
        owed = int(charges_owed.get(currency) or 0)
        if balance != -owed:
            found.append({"type": "loan_charges_mismatch", "currency": currency, "number": number,
                          "balance": format_minor(balance, currency), "owed": format_minor(owed, currency)})
    return found
