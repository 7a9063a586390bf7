"""Fan-out: turn new job events into delivery rows, one per (event, endpoint, type), for the owner's endpoints.

Event types: a job reaching `succeeded`, `failed`, `cancelled` or `awaiting_confirmation` is `job.<status>`; a job of
kind `kyc` reaching a terminal status is also `kyc.decided` (its `result.status` says verified, needs_review or
rejected). A decision staff take later on review changes no job, so it is not a webhook event. An endpoint gets the
events of its owner's jobs that happened after it was created.

The position in job_events is one row (webhook_cursors), locked FOR UPDATE, so concurrent fan-outs take turns and
the second finds nothing left; the unique (event, endpoint, type) key is the last guard. Event ids are taken when a
transaction writes, not when it commits, so a plain "id > last" cursor would skip an event whose transaction commits
after a later one was read. Fan-out therefore moves only past final ids (core.event_order): up to the first gap in
the ids read, or past it once the horizon has. The horizon here has no patience: a transaction that wrote a job
event and stays open holds webhooks back until it ends (a stream gives up after seconds; a webhook is never
skipped), while transactions that write no job event hold nothing back. SQLite has one writer at a time, so its ids
commit in order."""

from __future__ import annotations

import json
import math
import uuid
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.bank import Bank
from core.clock import as_utc, isoformat, utcnow
from core.event_order import Horizon
from core.events import event_of
from core.jobs import TERMINAL
from core.models import JobEvent, Webhook, WebhookCursor, WebhookDelivery, new_id
from core.webhooks.deliveries import MAX_ATTEMPTS

CURSOR = "job_events"
JOB_STATUSES = ("succeeded", "failed", "cancelled", "awaiting_confirmation")


def event_types(kind: str, status: str) -> list[str]:
    types = [f"job.{status}"] if status in JOB_STATUSES else []
    if kind == "kyc" and status in TERMINAL:
        types.append("kyc.decided")
    return types


def body(event_type: str, at: str | None, job: dict[str, Any]) -> str:
    """Serialized once, here: the exact text that is signed and sent on every attempt."""
    return json.dumps({"type": event_type, "timestamp": at, "data": job}, separators=(",", ":"), ensure_ascii=False)


def fan_out(bank: Bank, *, batch_size: int = 500, gap_wait_seconds: float = 0.5) -> int:
    """Create the deliveries of every new final event. Safe to run anywhere, concurrently. Returns how many.

    A gap in the ids waits up to gap_wait_seconds for the writers of job events open now to end: long enough for
    the transactions that make up a busy stack's gaps, short enough that a writer left open delays the claims of
    this round only briefly (the next round tries again). The horizon lives for one call, so nothing it learnt can
    outlast the table it learnt it from."""
    created, horizon = 0, Horizon(bank.db, patience_seconds=math.inf)
    while True:
        with bank.db.transaction() as s:
            cursor = _cursor(s)
            after = cursor.last_event_id
            rows, ready = horizon.final(after, partial(_after, s, after, batch_size), wait_seconds=gap_wait_seconds)
            if ready:
                created += _deliveries_for(s, ready)
                cursor.last_event_id = ready[-1].id
                cursor.updated_at = utcnow()
        if len(rows) < batch_size or len(ready) < len(rows):
            return created


def _postgres(s: Session) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def _cursor(s: Session) -> WebhookCursor:
    dialect_insert = pg_insert if _postgres(s) else sqlite_insert
    s.execute(dialect_insert(WebhookCursor).values(name=CURSOR, last_event_id=0, updated_at=utcnow())
              .on_conflict_do_nothing(index_elements=["name"]))
    cursor = s.scalar(select(WebhookCursor).where(WebhookCursor.name == CURSOR).with_for_update())
    assert cursor is not None
    return cursor


def _after(s: Session, after: int, limit: int) -> list[JobEvent]:
    return list(s.scalars(select(JobEvent).where(JobEvent.id > after).order_by(JobEvent.id).limit(limit)))


def _deliveries_for(s: Session, rows: list[JobEvent]) -> int:
    wanted = [(row, types) for row in rows if (types := event_types(str(row.job.get("kind")), row.status))]
    if not wanted:
        return 0
    owners = {row.user_id for row, _ in wanted}
    hooks: dict[str, list[Webhook]] = {}
    for hook in s.scalars(select(Webhook).where(Webhook.user_id.in_(owners), Webhook.status == "active")):
        hooks.setdefault(hook.user_id, []).append(hook)
    now = utcnow()
    values = []
    for row, types in wanted:
        at = as_utc(row.at)
        job = None
        for hook in hooks.get(row.user_id, []):
            if at < as_utc(hook.created_at):
                continue  # the event is older than the endpoint
            for event_type in (t for t in types if t in hook.events):
                job = job or event_of(row).job
                values.append({
                    "id": new_id(), "webhook_id": hook.id, "event_id": row.id, "type": event_type,
                    "message_id": f"msg_{uuid.uuid4().hex}",
                    "payload": body(event_type, isoformat(at), job), "status": "pending", "attempts": 0,
                    "max_attempts": MAX_ATTEMPTS, "next_attempt_at": now, "event_at": at, "created_at": now,
                    "updated_at": now,
                })
    if not values:
        return 0
    dialect_insert = pg_insert if _postgres(s) else sqlite_insert
    inserted = s.scalars(dialect_insert(WebhookDelivery).values(values).on_conflict_do_nothing(
        index_elements=["event_id", "webhook_id", "type"]).returning(WebhookDelivery.id))
    return len(list(inserted))
