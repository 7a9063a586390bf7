"""Outgoing transfer limits: one row per (customer, currency) with the limits staff set (NULL: the bank's default)
and the running usage of the current UTC day and calendar month, locked by posting.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 16:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_limits",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("daily_limit", sa.BigInteger(), nullable=True),
        sa.Column("monthly_limit", sa.BigInteger(), nullable=True),
        sa.Column("usage_day", sa.Date(), nullable=False),
        sa.Column("day_used", sa.BigInteger(), nullable=False),
        sa.Column("usage_month", sa.Date(), nullable=False),
        sa.Column("month_used", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("daily_limit IS NULL OR daily_limit > 0", name=op.f("ck_customer_limits_daily_limit_positive")),
        sa.CheckConstraint(
            "monthly_limit IS NULL OR monthly_limit > 0", name=op.f("ck_customer_limits_monthly_limit_positive")
        ),
        sa.CheckConstraint("day_used >= 0 AND month_used >= 0", name=op.f("ck_customer_limits_usage_not_negative")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_customer_limits_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "currency", name=op.f("pk_customer_limits")),
    )


def downgrade() -> None:
    op.drop_table("customer_limits")
