"""An email may carry a file: the monthly statement's PDF. The notification records where the file is under the
data folder, its name, type, size and SHA-256 (core.notifications.attachments); the file itself is read when the
message is sent.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08 11:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "attachment", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("attachment")
