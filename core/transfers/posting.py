"""Posting claimed transfer jobs to the ledger, many per transaction, each exactly once.

A worker claims its own job and up to N-1 other due ones (SKIP LOCKED, so workers never wait on each other's
jobs), locks the accounts involved in id order (so concurrent batches never deadlock), applies every transfer
in memory against the locked balances, and writes entries, balances, transfers and job statuses in one commit.
If the database rejects the batch, each job is retried alone so one bad posting cannot hold up the others."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import case, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core import jobs
from core.clock import utcnow
from core.db import Database
from core.errors import TransientError
from core.models import Account, Entry, Job, Transfer

log = logging.getLogger(__name__)
POSTING_TASK = "transfers.post"
MAX_BALANCE = 2**63 - 1  # PostgreSQL BIGINT
REJECTED = (IntegrityError, DataError)


@dataclass
class PostingReport:
    posted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    own_job_busy: bool = False


def post_transfer_jobs(db: Database, job_id: str, *, batch_size: int = 100) -> PostingReport:
    """Post job_id (and other due transfer jobs, up to batch_size). Safe under any number of duplicate calls."""
    try:
        return _post_batch(db, job_id, batch_size)
    except REJECTED:
        log.exception("posting: batch around job %s rejected by the database; posting one by one", job_id)
    except OperationalError as exc:
        raise TransientError(str(exc.orig)) from exc
    return _post_batch(db, job_id, 1, only_own=True)


def _claim(s: Session, job_id: str, batch_size: int, only_own: bool) -> list[Job]:
    now = utcnow()
    query = select(Job).where(Job.task_name == POSTING_TASK, Job.status == "queued", Job.available_at <= now)
    if only_own:
        query = query.where(Job.id == job_id)
    query = query.order_by(case((Job.id == job_id, 0), else_=1), Job.created_at).limit(batch_size)
    return list(s.scalars(query.with_for_update(skip_locked=True)))


def _post_batch(db: Database, job_id: str, batch_size: int, *, only_own: bool = False) -> PostingReport:
    report = PostingReport()
    try:
        with db.transaction() as s:
            claimed = _claim(s, job_id, batch_size, only_own)
            if not any(j.id == job_id for j in claimed):
                status = s.scalar(select(Job.status).where(Job.id == job_id))
                report.own_job_busy = status == "queued"
            if claimed:
                _apply(s, claimed, report)
    except REJECTED:
        if only_own:
            _fail_alone(db, job_id)
            report.failed.append(job_id)
            return report
        raise
    except DBAPIError as exc:
        if isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False):
            raise TransientError(str(exc.orig)) from exc
        raise
    return report


def _apply(s: Session, claimed: list[Job], report: PostingReport) -> None:
    now = utcnow()
    transfers = {t.job_id: t for t in s.scalars(select(Transfer).where(Transfer.job_id.in_([j.id for j in claimed])))}
    account_ids = sorted({a for t in transfers.values() for a in (t.source_account_id, t.destination_account_id)})
    # FOR NO KEY UPDATE: balance is not a key, so foreign-key checks of concurrent accepts are not blocked.
    locked = select(Account).where(Account.id.in_(account_ids)).order_by(Account.id).with_for_update(key_share=True)
    accounts = {a.id: a for a in s.scalars(locked)}
    for job in claimed:
        job.attempts += 1
        transfer = transfers.get(job.id)
        if transfer is None or transfer.status != "pending":
            jobs.finish(
                job,
                "failed",
                error_code="invalid_state",
                error_message="The transfer was not pending when its job ran.",
            )
            report.failed.append(job.id)
            continue
        source, destination = accounts[transfer.source_account_id], accounts[transfer.destination_account_id]
        failure = _refusal(transfer, source, destination)
        if failure:
            code, message = failure
            transfer.status, transfer.failure_code = "failed", code
            jobs.finish(
                job,
                "failed",
                error_code=code,
                error_message=message,
                result={"transfer_id": transfer.id, "status": "failed"},
            )
            report.failed.append(job.id)
            continue
        source.balance -= transfer.amount
        destination.balance += transfer.amount
        for account, amount in ((source, -transfer.amount), (destination, transfer.amount)):
            s.add(
                Entry(
                    transfer_id=transfer.id,
                    account_id=account.id,
                    currency=transfer.currency,
                    amount=amount,
                    balance_after=account.balance,
                    description=transfer.description,
                    posted_at=now,
                )
            )
        transfer.status, transfer.posted_at = "posted", now
        jobs.finish(job, "succeeded", result={"transfer_id": transfer.id, "status": "posted"})
        report.posted.append(job.id)
    for account in accounts.values():
        account.updated_at = now


def _refusal(t: Transfer, source: Account, destination: Account) -> tuple[str, str] | None:
    for side, account in (("source", source), ("destination", destination)):
        if account.status == "frozen":
            return "account_frozen", f"The {side} account is frozen."
        if account.status != "active":
            return f"account_{account.status}", f"The {side} account is {account.status}."
    if source.kind == "customer" and source.balance < t.amount:
        return "insufficient_funds", "The source account does not have enough money."
    if destination.balance + t.amount > MAX_BALANCE or source.balance - t.amount < -MAX_BALANCE:
        return "balance_limit_exceeded", "The posting would exceed the largest balance an account can hold."
    return None


def _fail_alone(db: Database, job_id: str) -> None:
    """The database refused this one posting outright: record it as failed rather than retry forever."""
    log.error("posting: job %s rejected by the database constraints; marking failed", job_id)
    with db.transaction() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status in jobs.TERMINAL:
            return
        transfer = s.scalar(select(Transfer).where(Transfer.job_id == job_id))
        if transfer is not None and transfer.status == "pending":
            transfer.status, transfer.failure_code = "failed", "posting_rejected"
        jobs.finish(job, "failed", error_code="posting_rejected", error_message="The ledger refused this posting.")
