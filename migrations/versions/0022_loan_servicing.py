"""Loan servicing: instalments collected on their due date, overdue instalments and late fees, daily interest
accrual and early repayment. The bank gets an interest income and a fee income account per currency (internal);
loan postings get their own transfer kinds.

Each instalment keeps what has been accrued on it (interest_accrued), what was paid towards its interest ahead of
its due date by an early repayment (interest_paid), its late fee once charged, and the day of the last collection
attempt (one per day) and of its reminder. A loan keeps how much principal has been repaid and the day through
which interest has been accrued.

Revision ID: 0022
Revises: 0020
Create Date: 2026-11-25 18:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

KINDS = ("kind IN ('transfer', 'deposit', 'withdrawal', 'reversal', 'disbursement', 'loan_repayment', "
         "'interest_accrual', 'late_fee')")
OLD_KINDS = "kind IN ('transfer', 'deposit', 'withdrawal', 'reversal', 'disbursement')"
TYPES = "type IN ('checking', 'savings', 'cash', 'loan', 'interest', 'fees')"
OLD_TYPES = "type IN ('checking', 'savings', 'cash', 'loan')"


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_type"), sa.text(TYPES))
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(KINDS))
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("principal_paid", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("accrued_through", sa.Date(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_loans_principal_paid"),
                                         sa.text("principal_paid >= 0 AND principal_paid <= principal"))
    with op.batch_alter_table("loan_instalments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("interest_accrued", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("interest_paid", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("late_fee", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_attempt_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("reminded_on", sa.Date(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_loan_instalments_accrual"),
            sa.text("interest_accrued >= 0 AND interest_accrued <= interest AND interest_paid >= 0 "
                    "AND interest_paid <= interest_accrued AND late_fee >= 0"),
        )
        batch_op.create_index("ix_loan_instalments_status_due", ["status", "due_date"], unique=False)


def downgrade() -> None:
    if op.get_bind().scalar(sa.text(
            "SELECT count(*) FROM transfers WHERE kind IN ('loan_repayment', 'interest_accrual', 'late_fee')")):
        raise RuntimeError("Loan repayments, accruals or fees exist: they cannot be represented without servicing.")
    with op.batch_alter_table("loan_instalments", schema=None) as batch_op:
        batch_op.drop_index("ix_loan_instalments_status_due")
        batch_op.drop_constraint(op.f("ck_loan_instalments_accrual"), type_="check")
        for column in ("reminded_on", "last_attempt_on", "paid_at", "late_fee", "interest_paid", "interest_accrued"):
            batch_op.drop_column(column)
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_loans_principal_paid"), type_="check")
        batch_op.drop_column("accrued_through")
        batch_op.drop_column("principal_paid")
    op.execute("DELETE FROM accounts WHERE type IN ('interest', 'fees') AND balance = 0")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(OLD_KINDS))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_type"), sa.text(OLD_TYPES))
