"""Every inserted or updated users row carries the id of the transaction that wrote it (`changed_xid`, set by a
trigger on PostgreSQL), indexed: each API process keeps the users it has looked up in memory and asks four times a
second which of them changed (core.local_users). Rows written before this migration stay NULL until their next
change: no process held a copy of them across it.

On SQLite (the embedded default, where the API reads users from the local file on every request) the column stays
NULL.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08 00:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place (ALTER TABLE ... ADD COLUMN), on SQLite too: no batch copy of a table so many others refer to.
    op.add_column("users", sa.Column("changed_xid", sa.BigInteger(), nullable=True))
    op.create_index("ix_users_changed_xid", "users", ["changed_xid"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
        CREATE FUNCTION bankq_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.changed_xid := pg_current_xact_id()::text::bigint;
          RETURN NEW;
        END $$
        """)
        op.execute("CREATE TRIGGER users_changed_xid BEFORE INSERT OR UPDATE ON users "
                   "FOR EACH ROW EXECUTE FUNCTION bankq_user_changed()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS users_changed_xid ON users")
        op.execute("DROP FUNCTION IF EXISTS bankq_user_changed()")
    op.drop_index("ix_users_changed_xid", table_name="users")
    op.execute("ALTER TABLE users DROP COLUMN changed_xid")
