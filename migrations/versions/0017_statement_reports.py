"""Statement reports: one row per rendered statement file, the once-per-month guard of the monthly statement, and
the customer's opt-out (`users.monthly_statements`, on for everyone already there).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 16:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("monthly_statements", sa.Boolean(), server_default=sa.text("true"), nullable=False)
        )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("requested_by", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("monthly", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stored_name", sa.String(length=80), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("entry_count", sa.Integer(), nullable=True),
        sa.Column("opening_balance", sa.BigInteger(), nullable=True),
        sa.Column("closing_balance", sa.BigInteger(), nullable=True),
        sa.Column("total_in", sa.BigInteger(), nullable=True),
        sa.Column("total_out", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("format IN ('pdf', 'csv')", name=op.f("ck_reports_format")),
        sa.CheckConstraint("period_from <= period_to", name=op.f("ck_reports_period")),
        sa.CheckConstraint("status IN ('processing', 'ready', 'failed')", name=op.f("ck_reports_status")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_reports_account_id_accounts")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_reports_requested_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("job_id", name=op.f("uq_reports_job_id")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_account_id"), ["account_id"], unique=False)
    op.create_table(
        "monthly_statements",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_monthly_statements_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "month", name=op.f("pk_monthly_statements")),
        sa.UniqueConstraint("report_id", name=op.f("uq_monthly_statements_report_id")),
    )


def downgrade() -> None:
    op.drop_table("monthly_statements")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_account_id"))
    op.drop_table("reports")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("monthly_statements")
