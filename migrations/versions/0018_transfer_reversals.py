"""Transfer reversals: a reversal is a transfer of kind 'reversal' whose `reverses` names the original. A partial
unique index lets at most one reversal of a transfer be pending or posted (a failed one may be tried again), and a
CHECK ties the kind to the link.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 16:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

LIVE = sa.text("status <> 'failed'")
KINDS = "kind IN ('transfer', 'deposit', 'withdrawal', 'reversal')"
OLD_KINDS = "kind IN ('transfer', 'deposit', 'withdrawal')"


def upgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reverses", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(op.f("fk_transfers_reverses_transfers"), "transfers", ["reverses"], ["id"])
        batch_op.create_index(
            "uq_transfers_reverses_live", ["reverses"], unique=True, postgresql_where=LIVE, sqlite_where=LIVE
        )
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(KINDS))
        batch_op.create_check_constraint(
            op.f("ck_transfers_reversal_link"), sa.text("(kind = 'reversal') = (reverses IS NOT NULL)")
        )


def downgrade() -> None:
    if op.get_bind().scalar(sa.text("SELECT count(*) FROM transfers WHERE kind = 'reversal'")):
        raise RuntimeError("Reversals exist: they cannot be represented without the reverses column.")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_transfers_reversal_link"), type_="check")
        batch_op.drop_constraint(op.f("ck_transfers_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_transfers_kind"), sa.text(OLD_KINDS))
        batch_op.drop_index("uq_transfers_reverses_live")
        batch_op.drop_constraint(op.f("fk_transfers_reverses_transfers"), type_="foreignkey")
        batch_op.drop_column("reverses")
