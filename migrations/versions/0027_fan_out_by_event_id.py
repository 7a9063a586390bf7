"""Webhook fan-out reads job_events in id order up to the event horizon (core.event_order), waiting only for the
transactions that write job events, instead of in (writing transaction id, event id) order below the snapshot's xmin,
which waited for every open transaction in the database. The cursor keeps only an event id, and job_events loses the
writing transaction's id and its index.

The cursor moves back to just before the first event the old order had not yet reached (or stays where it is): events
read again between there and the old position already have their deliveries, and the unique (event, endpoint, type)
key keeps them from being made twice. Run with the workers stopped: `make run` migrates before it starts them.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 13:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
        UPDATE webhook_cursors c SET last_event_id = least(  -- least() passes over the NULL of "none left"
          c.last_event_id, (SELECT min(e.id) - 1 FROM job_events e WHERE (e.tx, e.id) > (c.last_tx, c.last_event_id)))
        """)
    with op.batch_alter_table("webhook_cursors", schema=None) as batch_op:
        batch_op.drop_column("last_tx")
    # In place, on SQLite too (3.35+): a batch copy of job_events would break the triggers on jobs that write to it.
    op.drop_index("ix_job_events_tx_id", table_name="job_events")
    op.execute("ALTER TABLE job_events DROP COLUMN tx")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE job_events ADD COLUMN tx bigint DEFAULT (pg_current_xact_id()::text::bigint)")
    else:
        op.add_column("job_events", sa.Column("tx", sa.BigInteger(), nullable=True))
    op.create_index("ix_job_events_tx_id", "job_events", ["tx", "id"], unique=False)
    with op.batch_alter_table("webhook_cursors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_tx", sa.BigInteger(), nullable=False, server_default="0"))
