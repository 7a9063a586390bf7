"""Every loan gets an account of its own in the ledger, holding minus the principal still owed on it; the bank's
pooled loan account becomes the receivable of what is owed on top of principal (interest accrued, late fees
charged): BANKQ-LOANS-<ccy> is renamed BANKQ-LOAN-CHARGES-<ccy>, of type 'receivable'.

Loans disbursed before this revision get their account here (numbered as core.loans.books numbers them), and a
posting of kind 'loan_opening' moves each one's outstanding principal from the pool onto it, so every balance still
equals the sum of its entries and the pool keeps only the interest and fees owed. An early repayment accepted but
not yet posted is pointed at the loan's account. Repayments from now on also post a 'charges_paid' transfer: the
part of a payment that settles interest and fees, from the loan's account to the receivable.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 10:00:00
"""

import uuid
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

KINDS = ("kind IN ('transfer', 'deposit', 'withdrawal', 'reversal', 'disbursement', 'loan_repayment', "
         "'interest_accrual', 'late_fee', 'charges_paid', 'loan_opening')")
OLD_KINDS = ("kind IN ('transfer', 'deposit', 'withdrawal', 'reversal', 'disbursement', 'loan_repayment', "
             "'interest_accrual', 'late_fee')")
TYPES = "type IN ('checking', 'savings', 'cash', 'loan', 'interest', 'fees', 'receivable')"
OLD_TYPES = "type IN ('checking', 'savings', 'cash', 'loan', 'interest', 'fees')"
LEDGER_ACCOUNT = "disbursement_transfer_id IS NULL OR ledger_account_id IS NOT NULL"
# As core.loans.books.posting_key (a migration keeps its own copy).
KEYS = uuid.UUID("6f1d2b8e-3c4a-4e55-9a7b-0c2d9e8f1a35")

accounts = sa.table(
    "accounts", sa.column("id"), sa.column("number"), sa.column("owner_id"), sa.column("currency"), sa.column("type"),
    sa.column("kind"), sa.column("status"), sa.column("balance"), sa.column("created_at"), sa.column("updated_at"),
)
transfers = sa.table(
    "transfers", sa.column("id"), sa.column("job_id"), sa.column("kind"), sa.column("source_account_id"),
    sa.column("destination_account_id"), sa.column("amount"), sa.column("currency"), sa.column("description"),
    sa.column("status"), sa.column("requested_by"), sa.column("created_at"), sa.column("posted_at"),
)
entries = sa.table(
    "entries", sa.column("transfer_id"), sa.column("account_id"), sa.column("currency"), sa.column("amount"),
    sa.column("balance_after"), sa.column("description"), sa.column("posted_at"),
)
loans = sa.table(
    "loans", sa.column("id"), sa.column("user_id"), sa.column("currency"), sa.column("principal"),
    sa.column("principal_paid"), sa.column("disbursement_transfer_id"), sa.column("ledger_account_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_type"), sa.text(TYPES))
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(KINDS))
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ledger_account_id", sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_loans_ledger_account_id"), ["ledger_account_id"])
        batch_op.create_foreign_key(op.f("fk_loans_ledger_account_id_accounts"), "accounts",
                                    ["ledger_account_id"], ["id"])

    bind = op.get_bind()
    bind.execute(sa.text("UPDATE accounts SET number = 'BANKQ-LOAN-CHARGES-' || currency, type = 'receivable' "
                         "WHERE kind = 'internal' AND number = 'BANKQ-LOANS-' || currency"))
    _open_loan_accounts(bind)
    # An early repayment accepted before now is still pending, aimed at the pool: it pays into the loan's account.
    bind.execute(sa.text(
        "UPDATE transfers SET destination_account_id = (SELECT l.ledger_account_id FROM jobs j JOIN loans l "
        "ON l.id = j.resource_id WHERE j.id = transfers.job_id AND j.kind = 'loan_repayment') "
        "WHERE kind = 'loan_repayment' AND status = 'pending' AND destination_account_id IN "
        "(SELECT id FROM accounts WHERE type = 'receivable') AND EXISTS (SELECT 1 FROM jobs j JOIN loans l "
        "ON l.id = j.resource_id WHERE j.id = transfers.job_id AND j.kind = 'loan_repayment' "
        "AND l.ledger_account_id IS NOT NULL)"
    ))

    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_loans_ledger_account"), sa.text(LEDGER_ACCOUNT))


def _open_loan_accounts(bind: sa.engine.Connection) -> None:
    now = datetime.now(UTC)
    pools = {row.currency: [row.id, row.balance] for row in bind.execute(
        sa.select(accounts.c.id, accounts.c.currency, accounts.c.balance).where(accounts.c.type == "receivable"))}
    disbursed = bind.execute(
        sa.select(loans.c.id, loans.c.user_id, loans.c.currency, loans.c.principal, loans.c.principal_paid)
        .where(loans.c.disbursement_transfer_id.is_not(None), loans.c.ledger_account_id.is_(None))
        .order_by(loans.c.id)
    ).all()
    for loan in disbursed:
        account_id = str(uuid.uuid4())
        owed = loan.principal - loan.principal_paid
        bind.execute(accounts.insert().values(
            id=account_id, number=f"BANKQ-LOAN-{loan.id.replace('-', '')[:20].upper()}", owner_id=None,
            currency=loan.currency, type="loan", kind="internal", status="active", balance=-owed, created_at=now,
            updated_at=now))
        bind.execute(loans.update().where(loans.c.id == loan.id).values(ledger_account_id=account_id))
        if owed == 0:
            continue
        pool = pools[loan.currency]  # it paid the loan out, so it exists
        pool[1] += owed
        transfer_id = str(uuid.uuid4())
        description = f"Principal owed on loan {loan.id}, to the loan's own account"
        bind.execute(transfers.insert().values(
            id=transfer_id, job_id=str(uuid.uuid5(KEYS, f"loan_opening:{loan.id}")), kind="loan_opening",
            source_account_id=account_id, destination_account_id=pool[0], amount=owed, currency=loan.currency,
            description=description, status="posted", requested_by=loan.user_id, created_at=now, posted_at=now))
        bind.execute(entries.insert(), [
            {"transfer_id": transfer_id, "account_id": account_id, "currency": loan.currency, "amount": -owed,
             "balance_after": -owed, "description": description, "posted_at": now},
            {"transfer_id": transfer_id, "account_id": pool[0], "currency": loan.currency, "amount": owed,
             "balance_after": pool[1], "description": description, "posted_at": now},
        ])
    for account_id, balance in pools.values():
        bind.execute(accounts.update().where(accounts.c.id == account_id).values(balance=balance, updated_at=now))


def downgrade() -> None:
    if op.get_bind().scalar(sa.text("SELECT count(*) FROM loans WHERE ledger_account_id IS NOT NULL")):
        raise RuntimeError("Loans have accounts of their own: their postings cannot be represented without them.")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_loans_ledger_account"), type_="check")
        batch_op.drop_constraint(op.f("fk_loans_ledger_account_id_accounts"), type_="foreignkey")
        batch_op.drop_constraint(op.f("uq_loans_ledger_account_id"), type_="unique")
        batch_op.drop_column("ledger_account_id")
    op.execute("UPDATE accounts SET number = 'BANKQ-LOANS-' || currency, type = 'loan' "
               "WHERE kind = 'internal' AND number = 'BANKQ-LOAN-CHARGES-' || currency")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(OLD_KINDS))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_type"), sa.text(OLD_TYPES))
