"""Jobs: the status of every asynchronous request, and the sweeps that keep each one moving."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from core.clock import as_utc, isoformat, utcnow
from core.db import OUTBOX, Database, publish_after_commit, queue_insert
from core.errors import NotFound
from core.models import Job, OutboxMessage, User, new_id
from core.pagination import newest_first

JOBS = cast(Table, Job.__table__)
TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running", "awaiting_confirmation", *TERMINAL)
RESOURCE_PATHS = {
    "transfer": "/api/v1/transfers/{id}",
    "kyc_document": "/api/v1/kyc/documents/{id}",
    "report": "/api/v1/reports/{id}",
    "loan": "/api/v1/loans/{id}",
}

# kind -> (task name, queue)
ROUTES: dict[str, tuple[str, str]] = {
    "transfer": ("transfers.post", "transfers"),
    "deposit": ("transfers.post", "transfers"),
    "withdrawal": ("transfers.post", "transfers"),
    "reversal": ("transfers.post", "transfers"),
    "transfer_batch": ("transfers.post_batch", "transfers"),
    "loan_disbursement": ("loans.disburse", "transfers"),
    "loan_repayment": ("loans.repay", "transfers"),
    "kyc": ("kyc.read", "kyc"),
    "otp": ("notify.send", "notify"),  # born succeeded: the code is issued on accept, its message sends itself
    "statement": ("reports.render", "default"),
}
# A running job is only re-driven once nobody has touched it for this long (OCR can take a while).
RUNNING_LEASE_SECONDS = 600
QUEUES = ("transfers", "kyc", "notify", "default", "webhooks")


def job_view(job: Job) -> dict[str, Any]:
    resource = None
    if job.resource_type and job.resource_id:
        resource = RESOURCE_PATHS.get(job.resource_type, "").format(id=job.resource_id) or None
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "created_at": isoformat(job.created_at),
        "updated_at": isoformat(job.updated_at),
        "attempts": job.attempts,
        "result": job.result,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "links": {"self": f"/api/v1/jobs/{job.id}", "resource": resource},
    }


def new_job(
    session: Session,
    *,
    kind: str,
    user_id: str,
    resource_type: str,
    resource_id: str,
    job_id: str | None = None,
    available_at=None,
) -> Job:  # type: ignore[no-untyped-def]
    task_name, queue = ROUTES[kind]
    now = utcnow()
    job = Job(
        kind=kind,
        queue=queue,
        task_name=task_name,
        status="queued",
        user_id=user_id,
        resource_type=resource_type,
        resource_id=resource_id,
        created_at=now,
        updated_at=now,
        available_at=available_at or now,
    )
    if job_id:
        job.id = job_id
    session.add(job)
    return job


def queue_new_job(
    session: Session,
    *,
    kind: str,
    user_id: str,
    resource_type: str,
    resource_id: str,
    status: str = "queued",
    available_at: datetime | None = None,
    enqueue: bool = True,
) -> Job:
    """`new_job` (and `enqueue`) as queued inserts (core.db.queue_insert): the accept path writes its rows in one
    statement. Returns the job as a transient object, for its view."""
    task_name, queue = ROUTES[kind]
    now = utcnow()
    row = {
        "id": new_id(), "kind": kind, "queue": queue, "task_name": task_name, "status": status, "user_id": user_id,
        "resource_type": resource_type, "resource_id": resource_id, "attempts": 0, "result": None,
        "error_code": None, "error_message": None, "available_at": available_at or now, "created_at": now,
        "updated_at": now, "finished_at": None,
    }
    queue_insert(session, JOBS, row)
    if enqueue:
        queue_insert(session, OUTBOX, {"task_name": task_name, "queue": queue, "job_id": row["id"], "attempts": 0,
                                       "created_at": now, "available_at": now})
    return Job(**row)


def enqueue(session: Session, job: Job) -> OutboxMessage:
    """Record that the job's message must reach the broker; published after commit, relayed if not."""
    return add_message(session, job.task_name, job.queue, job.id)


def add_message(session: Session, task_name: str, queue: str, message_id: str) -> OutboxMessage:
    """An outbox row in this transaction, published once the transaction has committed (relayed if not)."""
    message = OutboxMessage(task_name=task_name, queue=queue, job_id=message_id)
    session.add(message)
    publish_after_commit(session, message)
    return message


def finish(
    job: Job,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    now = utcnow()
    job.status, job.result, job.error_code, job.error_message = status, result, error_code, error_message
    job.updated_at = job.finished_at = now


def claim_leased(session: Session, job_id: str, kind: str, lease: timedelta) -> Job | None:
    """Lock a job for a slow task that works outside any transaction (OCR, rendering): one that is queued, or
    running under an expired lease. None when it is finished, locked by another worker or still leased."""
    job = session.scalar(select(Job).where(Job.id == job_id, Job.kind == kind).with_for_update(skip_locked=True))
    if job is None or job.status in TERMINAL:
        return None
    if job.status == "running" and job.updated_at is not None and as_utc(job.updated_at) > utcnow() - lease:
        return None
    return job


def start_attempt(job: Job) -> None:
    """The claimed job runs now: its lease starts and the attempt counts."""
    job.status, job.attempts, job.updated_at = "running", job.attempts + 1, utcnow()


def visible_job(session: Session, user: User, job_id: str) -> Job:
    job = session.get(Job, job_id) if isinstance(job_id, str) and len(job_id) <= 36 else None
    if job is None or not (job.user_id == user.id or user.role == "admin"):
        raise NotFound("No such job.", code="job_not_found")
    return job


def get_job(db: Database, user: User, job_id: str) -> dict[str, Any]:
    with db.transaction() as s:
        return job_view(visible_job(s, user, job_id))


def list_jobs(
    db: Database, user: User, *, status: str | None, kind: str | None, limit: int | None, cursor: str | None
) -> dict[str, Any]:
    query = select(Job).where(Job.user_id == user.id)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    with db.transaction() as s:
        rows, next_cursor = newest_first(s, query, Job, limit=limit, cursor=cursor)
    return {"items": [job_view(j) for j in rows], "next_cursor": next_cursor}


def redrive_stuck(db: Database, *, older_than_seconds: int, limit: int = 500) -> int:
    """Queue again any job whose message was lost (a killed worker, a flushed broker). Effects stay single:
    posting claims the job conditionally, so a duplicate message finds nothing to do."""
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_seconds)
    with db.transaction() as s:
        pending_outbox = select(OutboxMessage.job_id)
        stuck = list(
            s.scalars(
                select(Job)
                .where(
                    ((Job.status == "queued") & (Job.updated_at < cutoff))
                    | ((Job.status == "running") & (Job.updated_at < now - timedelta(seconds=RUNNING_LEASE_SECONDS))),
                    Job.available_at <= now,
                    Job.id.not_in(pending_outbox),
                )
                .order_by(Job.updated_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for job in stuck:
            job.status = "queued"
            job.updated_at = now
            enqueue(s, job)
        return len(stuck)


def counts_by_kind_status(db: Database) -> list[tuple[str, str, int]]:
    with db.transaction() as s:
        return [
            (k, st, int(n))
            for k, st, n in s.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))
        ]


def queue_depths(db: Database) -> dict[str, dict[str, float]]:
    """Waiting jobs per queue and the age of the oldest, from the truth rather than the broker."""
    now = utcnow()
    depths = {q: {"depth": 0.0, "oldest_age_seconds": 0.0} for q in QUEUES}
    with db.transaction() as s:
        rows = s.execute(
            select(Job.queue, func.count(), func.min(Job.available_at))
            .where(Job.status == "queued", Job.available_at <= now)
            .group_by(Job.queue)
        )
        for queue, n, oldest in rows:
            depths.setdefault(queue, {})
            depths[queue]["depth"] = float(n)
            depths[queue]["oldest_age_seconds"] = max(0.0, (now - as_utc(oldest)).total_seconds()) if oldest else 0.0
    return depths


def queue_report(db: Database) -> list[dict[str, Any]]:
    """GET /admin/queues: every queue by name, with its depth and the age of its oldest waiting job."""
    return [
        {"name": name, "depth": int(f["depth"]), "oldest_age_seconds": f["oldest_age_seconds"]}
        for name, f in sorted(queue_depths(db).items())
    ]
