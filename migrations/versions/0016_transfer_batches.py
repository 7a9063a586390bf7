"""Transfer batches: one job, many transfers (the batch row says whether they post all or none). `batch_index` is an item's place in its batch (NULL for a single
transfer). A single transfer's job still has exactly one transfer (partial unique index); a batch job has one per
index. The (job_id, batch_index) index also serves every look-up of a job's transfer(s) by job_id.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 10:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SINGLE = sa.text("batch_index IS NULL")


def upgrade() -> None:
    op.create_table(
        "transfer_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("atomic", sa.Boolean(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("item_count BETWEEN 1 AND 1000", name=op.f("ck_transfer_batches_item_count")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_transfer_batches_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_batches")),
        sa.UniqueConstraint("job_id", name=op.f("uq_transfer_batches_job_id")),
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_index", sa.Integer(), nullable=True))
        batch_op.create_index("uq_transfers_job_id_batch_index", ["job_id", "batch_index"], unique=True)
        batch_op.create_index(
            "uq_transfers_job_id_single", ["job_id"], unique=True, postgresql_where=SINGLE, sqlite_where=SINGLE
        )
        batch_op.drop_constraint("uq_transfers_job_id", type_="unique")


def downgrade() -> None:
    if op.get_bind().scalar(sa.text("SELECT count(*) FROM transfers WHERE batch_index IS NOT NULL")):
        raise RuntimeError("Batch transfers exist: one job per transfer cannot be restored without losing them.")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_transfers_job_id", ["job_id"])
        batch_op.drop_index("uq_transfers_job_id_single")
        batch_op.drop_index("uq_transfers_job_id_batch_index")
        batch_op.drop_column("batch_index")
    op.drop_table("transfer_batches")
