"""Loan applications: a customer applies, staff look and reject (approval is a job: core.loans.disbursement),
and the owner or staff read the loan and its schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.accounts import visible_account
from core.bank import Bank
from core.clock import isoformat, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.loans.books import outstanding
from core.loans.products import MAX_TERM_MONTHS, format_rate
from core.local_users import confirmed
from core.models import Account, Loan, LoanInstalment, LoanProduct, User
from core.money import format_minor, parse_amount
from core.pagination import newest_first
from core.transfers.requests import check_usable
from core.transfers.reversals import check_reason
from core.users import is_staff

STATUSES = ("applied", "approved", "rejected", "active", "overdue", "repaid")


@dataclass(frozen=True)
class LoanApplication:
    product_id: str
    amount: str
    term_months: int
    account_id: str


def loan_view(s: Session, loan: Loan, account: Account | None = None) -> dict[str, Any]:
    """The loan as the API shows it; `outstanding` is read off the loan's own account in the ledger (`account`,
    when the caller has loaded it)."""
    if account is None and loan.ledger_account_id:
        account = s.get(Account, loan.ledger_account_id)
    return {
        "id": loan.id,
        "status": loan.status,
        "product_id": loan.product_id,
        "user_id": loan.user_id,
        "account_id": loan.account_id,
        "currency": loan.currency,
        "principal": format_minor(loan.principal, loan.currency),
        "outstanding": format_minor(outstanding(account), loan.currency),
        "annual_rate": format_rate(loan.annual_rate_ppm),
        "term_months": loan.term_months,
        "reason": loan.reason,
        "failure_code": loan.failure_code,
        "job_id": loan.job_id,
        "disbursement_transfer_id": loan.disbursement_transfer_id,
        "ledger_account_id": account.id if account else None,
        "ledger_account_number": account.number if account else None,
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        "decided_at": isoformat(loan.decided_at),
        "created_at": isoformat(loan.created_at),
    }


def visible_loan(s: Session, user: User, loan_id: str, *, lock: bool = False) -> Loan:
    """The loan if this user may see it (its borrower or staff); otherwise 404, never revealing that it exists."""
    loan = s.get(Loan, loan_id, with_for_update=lock) if isinstance(loan_id, str) and len(loan_id) <= 36 else None
    if loan is None or not (is_staff(user) or loan.user_id == user.id):
        raise NotFound("No such loan.", code="loan_not_found")
    return loan


def apply_for_loan(bank: Bank, user: User, cmd: LoanApplication) -> dict[str, Any]:
    if user.role != "customer":
        raise Forbidden("Only customers apply for loans.", code="forbidden")
    if bank.settings.require_kyc:
        current = confirmed(bank.users, user, user.id, lambda u: u is not None and u.kyc_status == "verified")
        if current is None or current.kyc_status != "verified":
            raise Forbidden("Your identity must be verified before you borrow.", code="kyc_required")
    with bank.db.transaction() as s:
        product = s.get(LoanProduct, cmd.product_id) if len(cmd.product_id) <= 36 else None
        if product is None:
            raise NotFound("No such loan product.", code="loan_product_not_found")
        account = visible_account(s, user, cmd.account_id)
        if account.currency != product.currency:
            raise ValidationFailed(
                "The account's currency is not the product's.",
                code="currency_mismatch",
                errors={"account_id": [f"Choose an account in {product.currency}."]},
            )
        check_usable(account, "receiving")
        amount = parse_amount(cmd.amount, product.currency)
        if not product.min_amount <= amount <= product.max_amount:
            low, high = (format_minor(a, product.currency) for a in (product.min_amount, product.max_amount))
            raise ValidationFailed(
                "The amount is outside the product's range.", errors={"amount": [f"From {low} to {high}."]}
            )
        if not 1 <= cmd.term_months <= MAX_TERM_MONTHS or not (
            product.min_term_months <= cmd.term_months <= product.max_term_months
        ):
            raise ValidationFailed(
                "The term is outside the product's range.",
                errors={"term_months": [f"From {product.min_term_months} to {product.max_term_months} months."]},
            )
        now = utcnow()
        loan = Loan(
            product_id=product.id,
            user_id=user.id,
            account_id=account.id,
            currency=product.currency,
            principal=amount,
            annual_rate_ppm=product.annual_rate_ppm,
            term_months=cmd.term_months,
            status="applied",
            created_at=now,
            updated_at=now,
        )
        s.add(loan)
        s.flush()
        audit.record(
            s,
            user.id,
            "loan.applied",
            f"loan:{loan.id}",
            amount=cmd.amount,
            currency=loan.currency,
            term_months=loan.term_months,
        )
        return loan_view(s, loan)


def reject_loan(bank: Bank, user: User, loan_id: str, reason: str) -> dict[str, Any]:
    if not is_staff(user):
        raise NotFound("No such loan.", code="loan_not_found")
    text = check_reason(reason)
    with bank.db.transaction() as s:
        loan = visible_loan(s, user, loan_id, lock=True)
        if loan.status != "applied":
            raise Conflict(f"Only an applied loan can be rejected; this one is {loan.status}.", code="loan_not_applied")
        now = utcnow()
        loan.status, loan.reason, loan.decided_by, loan.decided_at, loan.updated_at = (
            "rejected",
            text,
            user.id,
            now,
            now,
        )
        audit.record(s, user.id, "loan.rejected", f"loan:{loan.id}", reason=text)
        return loan_view(s, loan)


def get_loan(bank: Bank, user: User, loan_id: str) -> dict[str, Any]:
    with bank.db.transaction() as s:
        return loan_view(s, visible_loan(s, user, loan_id))


def list_loans(bank: Bank, user: User, *, status: str | None, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """Staff see every loan, customers their own; newest first, optionally of one status."""
    query = select(Loan)
    if not is_staff(user):
        query = query.where(Loan.user_id == user.id)
    if status:
        query = query.where(Loan.status == status)
    with bank.db.transaction() as s:
        rows, next_cursor = newest_first(s, query, Loan, limit=limit, cursor=cursor)
        ids = [loan.ledger_account_id for loan in rows if loan.ledger_account_id]
        accounts = {a.id: a for a in s.scalars(select(Account).where(Account.id.in_(ids)))} if ids else {}
        items = [loan_view(s, loan, accounts.get(loan.ledger_account_id or "")) for loan in rows]
        return {"items": items, "next_cursor": next_cursor}


def instalment_view(i: LoanInstalment, currency: str) -> dict[str, Any]:
    return {
        "number": i.number,
        "due_date": i.due_date.isoformat(),
        "payment": format_minor(i.payment, currency),
        "principal": format_minor(i.principal, currency),
        "interest": format_minor(i.interest, currency),
        "late_fee": format_minor(i.late_fee, currency),
        "status": i.status,
    }


def get_schedule(bank: Bank, user: User, loan_id: str) -> dict[str, Any]:
    """The stored schedule; empty until the loan is disbursed (its due dates count from that day)."""
    with bank.db.transaction() as s:
        loan = visible_loan(s, user, loan_id)
        rows = s.scalars(
            select(LoanInstalment).where(LoanInstalment.loan_id == loan.id).order_by(LoanInstalment.number)
        )
        return {"items": [instalment_view(i, loan.currency) for i in rows]}
