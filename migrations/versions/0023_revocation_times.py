"""When each token was revoked, so API processes can keep a local copy of the revoked ids current by reading only
what is new (core.revocation.LocalRevocations).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-25 18:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False,
                                      server_default=sa.func.now()))
        batch_op.create_index("ix_revoked_tokens_revoked_at", ["revoked_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_revoked_tokens_revoked_at")
        batch_op.drop_column("revoked_at")
