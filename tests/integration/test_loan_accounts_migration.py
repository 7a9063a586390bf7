"""Migration 0025 on a ledger written before it, on PostgreSQL and SQLite: loans disbursed from the pooled
BANKQ-LOANS account get accounts of their own holding their outstanding principal, the pool keeps only the interest
owed, a pending early repayment pays into the loan's account, and the ledger check is ok after it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.orm import Session

from core.clock import clock
from core.db import Database
from core.ledger import check_ledger
from core.loans import repay_loan
from core.loans.applications import loan_view
from core.models import Account, Entry, Job, Loan, LoanInstalment, LoanProduct, Transfer, User, new_id
from core.setup import alembic_config
from tests import support

AT = datetime(2024, 3, 5, 9, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def old_database(request, tmp_path) -> Iterator[str]:
    """A database at revision 0024."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        server_url = request.getfixturevalue("pg_server").url
        url = support.create_database(server_url, prefix="bankq_migration")
    command.upgrade(alembic_config(url), "0024")
    yield url
    if request.param == "postgresql":
        support.drop_database(server_url, url)


class OldLedger:
    """Postings as the code before 0025 made them: balanced, balances kept, every loan through BANKQ-LOANS."""

    def __init__(self, s: Session, user: User) -> None:
        self.s, self.user = s, user

    def account(self, number: str, type_: str, kind: str = "internal") -> Account:
        account = Account(id=new_id(), number=number, currency="EUR", type=type_, kind=kind,
                          owner_id=self.user.id if kind == "customer" else None, balance=0)
        self.s.add(account)
        self.s.flush()
        return account

    def post(self, kind: str, source: Account, destination: Account, amount: int, job_id: str | None = None) -> None:
        transfer = Transfer(id=new_id(), job_id=job_id or new_id(), kind=kind, source_account_id=source.id,
                            destination_account_id=destination.id, amount=amount, currency="EUR", status="posted",
                            requested_by=self.user.id, created_at=AT, posted_at=AT)
        self.s.add(transfer)
        self.s.flush()
        for account, delta in ((source, -amount), (destination, amount)):
            account.balance += delta
            self.s.add(Entry(transfer_id=transfer.id, account_id=account.id, currency="EUR", amount=delta,
                             balance_after=account.balance, posted_at=AT))
        self.s.flush()

    def loan(self, product: LoanProduct, customer: Account, principal: int, paid: int, status: str,
             disbursement: str | None) -> str:
        loan_id = new_id()
        self.s.execute(insert(Loan.__table__).values(  # Core, and only the columns 0024 has
            id=loan_id, product_id=product.id, user_id=self.user.id, account_id=customer.id, currency="EUR",
            principal=principal, annual_rate_ppm=product.annual_rate_ppm, term_months=3, status=status,
            disbursement_transfer_id=disbursement, disbursed_on=date(2024, 1, 31) if disbursement else None,
            principal_paid=paid, accrued_through=date(2024, 3, 5) if disbursement else None, created_at=AT,
            updated_at=AT))
        return loan_id


def _seed(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with Session(engine) as s, s.begin():
        user = User(id=new_id())  # not added: the row goes in by Core, with only the columns 0024 has
        s.execute(insert(User.__table__).values(id=user.id, username="borrower", email="b@example.com",
                                                full_name="B", role="customer", kyc_status="verified"))
        old = OldLedger(s, user)
        cash, pool = old.account("BANKQ-CASH-EUR", "cash"), old.account("BANKQ-LOANS-EUR", "loan")
        interest, _ = old.account("BANKQ-INTEREST-EUR", "interest"), old.account("BANKQ-FEES-EUR", "fees")
        customer = old.account("12345678903", "checking", kind="customer")
        product = LoanProduct(id=new_id(), name="P", currency="EUR", annual_rate_ppm=120_000, min_amount=100,
                              max_amount=10_000_00, min_term_months=1, max_term_months=12, late_fee=0,
                              created_by=user.id)
        s.add(product)
        s.flush()
        old.post("deposit", cash, customer, 200_00)

        # A: 1000.00 over 3 months, the first instalment paid, 1.30 of the second's interest accrued.
        old.post("disbursement", pool, customer, 1000_00, job_id=new_id())
        disbursed = s.scalar(select(Transfer.id).where(Transfer.kind == "disbursement"))
        active = old.loan(product, customer, 1000_00, 330_02, "active", disbursed)
        for number, (principal, interest_, status, accrued) in enumerate(
            [(330_02, 10_00, "paid", 10_00), (333_32, 6_70, "due", 1_30), (336_66, 3_37, "due", 0)], start=1
        ):
            s.add(LoanInstalment(loan_id=active, number=number, due_date=date(2024, 1 + number, 29),
                                 payment=principal + interest_, principal=principal, interest=interest_, status=status,
                                 interest_accrued=accrued))
        old.post("interest_accrual", pool, interest, 10_00 + 1_30)
        old.post("loan_repayment", customer, pool, 340_02)

        # B: repaid in full; C: only applied.
        old.post("disbursement", pool, customer, 100_00, job_id=new_id())
        repaid_transfer = s.scalar(select(Transfer.id).where(Transfer.kind == "disbursement",
                                                             Transfer.amount == 100_00))
        repaid = old.loan(product, customer, 100_00, 100_00, "repaid", repaid_transfer)
        old.post("loan_repayment", customer, pool, 100_00)
        applied = old.loan(product, customer, 500_00, 0, "applied", None)

        # An early repayment of A accepted (its transfer pending, aimed at the pool) but not posted yet.
        job = Job(id=new_id(), kind="loan_repayment", queue="transfers", task_name="loans.repay", status="queued",
                  user_id=user.id, resource_type="loan", resource_id=active, attempts=0, created_at=AT,
                  updated_at=AT, available_at=AT)
        s.add(job)
        pending = Transfer(id=new_id(), job_id=job.id, kind="loan_repayment", source_account_id=customer.id,
                           destination_account_id=pool.id, amount=50_00, currency="EUR", status="pending",
                           requested_by=user.id, created_at=AT)
        s.add(pending)
        ids = {"active": active, "repaid": repaid, "applied": applied, "job": job.id, "pending": pending.id,
               "pool": pool.id, "customer": customer.id}
    engine.dispose()
    return ids


def test_loans_disbursed_before_0025_get_accounts_of_their_own(old_database):
    ids = _seed(old_database)
    db = Database(old_database)
    try:
        command.upgrade(alembic_config(old_database), "head")
        assert check_ledger(db) == {"ok": True, "accounts_checked": 7, "mismatches": []}
        with db.transaction() as s:
            pool = s.get(Account, ids["pool"])
            assert (pool.number, pool.type, pool.balance) == ("BANKQ-LOAN-CHARGES-EUR", "receivable", -1_30)
            active, repaid, applied = (s.get(Loan, ids[k]) for k in ("active", "repaid", "applied"))
            own = s.get(Account, active.ledger_account_id)
            assert (own.number, own.type, own.kind, own.balance) == (
                f"BANKQ-LOAN-{active.id.replace('-', '')[:20].upper()}", "loan", "internal", -669_98)
            assert loan_view(s, active)["outstanding"] == "669.98"
            assert s.get(Account, repaid.ledger_account_id).balance == 0 and applied.ledger_account_id is None
            opening = s.scalars(select(Transfer).where(Transfer.kind == "loan_opening")).one()
            assert (opening.source_account_id, opening.destination_account_id, opening.amount) == (
                own.id, pool.id, 669_98)
            assert s.scalar(select(func.count()).select_from(Entry).where(Entry.account_id == own.id)) == 1
            assert s.get(Transfer, ids["pending"]).destination_account_id == own.id

        clock.freeze(AT)  # the accepted early repayment now posts into the loan's account
        assert repay_loan(db, ids["job"]) == "succeeded"
        with db.transaction() as s:
            own = s.get(Account, s.get(Loan, ids["active"]).ledger_account_id)
            assert own.balance == -(669_98 - (50_00 - 1_30)) and s.get(Account, ids["pool"]).balance == 0
        assert check_ledger(db)["ok"]
    finally:
        clock.unfreeze()
        db.dispose()
