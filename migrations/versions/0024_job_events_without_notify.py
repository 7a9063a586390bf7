"""Job events without NOTIFY: the trigger only appends the job_events row. Wake-ups go through Redis pub/sub after
commit (core.event_wakeups), since a NOTIFY makes every notifying transaction commit one at a time.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 22:00:00
"""

from alembic import op


revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# As in 0014: the columns of a job's API view, as they are at the change (a migration keeps its own copy).
SNAPSHOT = ("id", "kind", "status", "user_id", "resource_type", "resource_id", "attempts", "result", "error_code",
            "error_message", "created_at", "updated_at", "finished_at")


def _function(notify: bool) -> str:
    snapshot = ", ".join(f"'{c}', NEW.{c}" for c in SNAPSHOT)
    ping = "PERFORM pg_notify('bankq_job_events', NEW.user_id);" if notify else ""
    return f"""
    CREATE OR REPLACE FUNCTION bankq_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO job_events (job_id, user_id, status, job, at)
      VALUES (NEW.id, NEW.user_id, NEW.status, jsonb_build_object({snapshot}), NEW.updated_at);
      {ping}
      RETURN NULL;
    END $$
    """


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(notify=False))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(notify=True))
