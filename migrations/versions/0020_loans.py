"""Loans: products, applications and their annuity schedules. A disbursement is a transfer of kind
'disbursement' from the bank's loan account (type 'loan', internal, so it may go negative) to the customer; a
loan's unique disbursement_transfer_id is the last guard against paying a loan out twice.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25 17:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

KINDS = "kind IN ('transfer', 'deposit', 'withdrawal', 'reversal', 'disbursement')"
OLD_KINDS = "kind IN ('transfer', 'deposit', 'withdrawal', 'reversal')"
TYPES = "type IN ('checking', 'savings', 'cash', 'loan')"
OLD_TYPES = "type IN ('checking', 'savings', 'cash')"


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_type"), sa.text(TYPES))
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(KINDS))

    op.create_table(
        "loan_products",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("annual_rate_ppm", sa.Integer(), nullable=False),
        sa.Column("min_amount", sa.BigInteger(), nullable=False),
        sa.Column("max_amount", sa.BigInteger(), nullable=False),
        sa.Column("min_term_months", sa.Integer(), nullable=False),
        sa.Column("max_term_months", sa.Integer(), nullable=False),
        sa.Column("late_fee", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("annual_rate_ppm BETWEEN 0 AND 1000000", name=op.f("ck_loan_products_annual_rate")),
        sa.CheckConstraint("min_amount > 0 AND min_amount <= max_amount", name=op.f("ck_loan_products_amounts")),
        sa.CheckConstraint(
            "min_term_months >= 1 AND min_term_months <= max_term_months", name=op.f("ck_loan_products_terms")
        ),
        sa.CheckConstraint("late_fee >= 0", name=op.f("ck_loan_products_late_fee")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_loan_products_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_products")),
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("annual_rate_ppm", sa.Integer(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("disbursement_transfer_id", sa.String(length=36), nullable=True),
        sa.Column("disbursed_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("principal > 0", name=op.f("ck_loans_principal_positive")),
        sa.CheckConstraint("term_months >= 1", name=op.f("ck_loans_term_positive")),
        sa.CheckConstraint(
            "status IN ('applied', 'approved', 'rejected', 'active', 'overdue', 'repaid')", name=op.f("ck_loans_status")
        ),
        sa.CheckConstraint(
            "(status IN ('active', 'overdue', 'repaid')) = (disbursement_transfer_id IS NOT NULL)",
            name=op.f("ck_loans_disbursed"),
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_loans_account_id_accounts")),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name=op.f("fk_loans_decided_by_users")),
        sa.ForeignKeyConstraint(
            ["disbursement_transfer_id"], ["transfers.id"], name=op.f("fk_loans_disbursement_transfer_id_transfers")
        ),
        sa.ForeignKeyConstraint(["product_id"], ["loan_products.id"], name=op.f("fk_loans_product_id_loan_products")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_loans_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
        sa.UniqueConstraint("disbursement_transfer_id", name=op.f("uq_loans_disbursement_transfer_id")),
    )
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index("ix_loans_status_created", ["status", "created_at", "id"], unique=False)
        batch_op.create_index("ix_loans_user_created", ["user_id", "created_at", "id"], unique=False)
    op.create_table(
        "loan_instalments",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("payment", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("interest", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint("number >= 1", name=op.f("ck_loan_instalments_number_positive")),
        sa.CheckConstraint(
            "principal >= 0 AND interest >= 0 AND payment = principal + interest",
            name=op.f("ck_loan_instalments_parts"),
        ),
        sa.CheckConstraint("status IN ('due', 'paid', 'overdue')", name=op.f("ck_loan_instalments_status")),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_instalments_loan_id_loans")),
        sa.PrimaryKeyConstraint("loan_id", "number", name=op.f("pk_loan_instalments")),
    )


def downgrade() -> None:
    if op.get_bind().scalar(sa.text("SELECT count(*) FROM transfers WHERE kind = 'disbursement'")):
        raise RuntimeError("Loan disbursements exist: they cannot be represented without loans.")
    op.drop_table("loan_instalments")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_index("ix_loans_user_created")
        batch_op.drop_index("ix_loans_status_created")
    op.drop_table("loans")
    op.drop_table("loan_products")
    op.execute("DELETE FROM accounts WHERE type = 'loan' AND balance = 0")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(OLD_KINDS))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_type"), type_="check")
        batch_op.create_check_constraint(op.f("ck_accounts_type"), sa.text(OLD_TYPES))
