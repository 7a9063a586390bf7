"""Job events: what happened to each job, in order, as the database recorded it (table job_events, written by
triggers on jobs in the same transaction as the change). Streams replay from here; webhooks deliver from here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import select

from core.db import Database
from core.jobs import job_view
from core.models import Job, JobEvent, User

_TIMES = ("created_at", "updated_at", "finished_at")


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    status: str
    snapshot: dict[str, Any]  # the job's row right after the change, as the trigger recorded it
    owner_id: str = ""  # whose job it is (who may see the event)

    @cached_property
    def job(self) -> dict[str, Any]:
        """The job as GET /api/v1/jobs/{id} showed it right after the change. Rendered when first asked for: the
        process's one reader of new events passes over everybody's, and most have no stream open to send them."""
        return job_view(_as_job(self.snapshot))

    @cached_property
    def data(self) -> str:
        """The job as compact JSON, serialised once however many streams send it."""
        return json.dumps(self.job, separators=(",", ":"))


def _as_job(snapshot: dict[str, Any]) -> Job:
    fields = dict(snapshot)
    for name in _TIMES:
        value = fields.get(name)
        fields[name] = datetime.fromisoformat(value) if isinstance(value, str) else value
    return Job(**{k: v for k, v in fields.items() if hasattr(Job, k)})


def event_of(row: Any) -> Event:
    """From a job_events row (the model, or a Core row of _COLUMNS)."""
    return Event(row.id, row.job_id, row.status, row.job, row.user_id)


_COLUMNS = (JobEvent.id, JobEvent.job_id, JobEvent.status, JobEvent.job, JobEvent.user_id)


def events_after(
    db: Database, user: User, after_id: int = 0, *, job_id: str | None = None, limit: int = 500
) -> list[Event]:
    """The caller's events with an id above after_id, oldest first (all of one job's when job_id is given)."""
    return events_of(db, user.id, after_id, job_id=job_id, limit=limit)


def events_of(
    db: Database, owner_id: str, after_id: int = 0, *, job_id: str | None = None, limit: int = 500,
    up_to: int | None = None,
) -> list[Event]:
    """Events of the jobs owned by owner_id with after_id < id (<= up_to when given), oldest first."""
    query = select(JobEvent).where(JobEvent.user_id == owner_id, JobEvent.id > after_id)
    if job_id is not None:
        query = query.where(JobEvent.job_id == job_id)
    if up_to is not None:
        query = query.where(JobEvent.id <= up_to)
    with db.single() as s:
        return [event_of(row) for row in s.scalars(query.order_by(JobEvent.id).limit(limit))]


def events_since(db: Database, after_id: int, *, limit: int = 500) -> list[Event]:
    """Everyone's events with an id above after_id, oldest first: for the one reader that hands them out."""
    query = select(*_COLUMNS).where(JobEvent.id > after_id).order_by(JobEvent.id).limit(limit)
    with db.statement() as conn:  # Core rows: the ORM's identity map and instances would be thrown away at once
        return [event_of(row) for row in conn.execute(query)]
