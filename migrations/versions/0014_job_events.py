"""Job events: the database appends one row to job_events whenever a job is created or its status changes, in the
same transaction, and (PostgreSQL) notifies `bankq_job_events` at commit so waiting streams wake at once.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 15:40:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The columns a job's API view is made of (core.jobs.job_view), as they are at the change.
SNAPSHOT = ("id", "kind", "status", "user_id", "resource_type", "resource_id", "attempts", "result", "error_code",
            "error_message", "created_at", "updated_at", "finished_at")


def _snapshot(build: str, wrap_json: str = "{}") -> str:
    return f"{build}(" + ", ".join(
        f"'{c}', " + (wrap_json.format(f"NEW.{c}") if c == "result" else f"NEW.{c}") for c in SNAPSHOT
    ) + ")"


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("job", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.create_index("ix_job_events_job_id_id", ["job_id", "id"], unique=False)
        batch_op.create_index("ix_job_events_user_id_id", ["user_id", "id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
        CREATE FUNCTION bankq_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO job_events (job_id, user_id, status, job, at)
          VALUES (NEW.id, NEW.user_id, NEW.status, {_snapshot("jsonb_build_object")}, NEW.updated_at);
          PERFORM pg_notify('bankq_job_events', NEW.user_id);
          RETURN NULL;
        END $$
        """)
        op.execute("CREATE TRIGGER jobs_event_on_insert AFTER INSERT ON jobs "
                   "FOR EACH ROW EXECUTE FUNCTION bankq_job_event()")
        op.execute("CREATE TRIGGER jobs_event_on_status AFTER UPDATE OF status ON jobs "
                   "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION bankq_job_event()")
    else:
        values = f"NEW.id, NEW.user_id, NEW.status, {_snapshot('json_object', 'json({})')}, NEW.updated_at"
        op.execute("CREATE TRIGGER jobs_event_on_insert AFTER INSERT ON jobs BEGIN "
                   f"INSERT INTO job_events (job_id, user_id, status, job, at) VALUES ({values}); END")
        op.execute("CREATE TRIGGER jobs_event_on_status AFTER UPDATE OF status ON jobs "
                   "WHEN OLD.status IS NOT NEW.status BEGIN "
                   f"INSERT INTO job_events (job_id, user_id, status, job, at) VALUES ({values}); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS jobs_event_on_status ON jobs")
        op.execute("DROP TRIGGER IF EXISTS jobs_event_on_insert ON jobs")
        op.execute("DROP FUNCTION IF EXISTS bankq_job_event()")
    else:
        op.execute("DROP TRIGGER IF EXISTS jobs_event_on_status")
        op.execute("DROP TRIGGER IF EXISTS jobs_event_on_insert")
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_index("ix_job_events_user_id_id")
        batch_op.drop_index("ix_job_events_job_id_id")
    op.drop_table("job_events")
