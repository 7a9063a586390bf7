"""Posting claimed transfer jobs to the ledger, many per transaction, each exactly once.

A worker claims its own job and up to N-1 other due ones (SKIP LOCKED, so workers never wait on each other's
jobs), locks the accounts involved in id order (so concurrent batches never deadlock), applies every transfer
in memory against the locked balances, and writes entries, balances, transfers and job statuses in one commit.
If the database rejects the batch, each job is retried alone so one bad posting cannot hold up the others.
Customers' transfers also charge their outgoing limits (core.limits), whose rows are locked after the accounts."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core import jobs
from core.clock import as_utc, utcnow
from core.db import Database, job_events_written
from core.errors import TransientError
from core.limits import NO_DEFAULT_LIMITS, DefaultLimits, Usage, UsageKey, lock_usage, save_usage
from core.models import Account, Entry, Job, Transfer

log = logging.getLogger(__name__)
POSTING_TASK = "transfers.post"
MAX_BALANCE = 2**63 - 1  # PostgreSQL BIGINT
REJECTED = (IntegrityError, DataError)
# How long a delivery waits for another worker's batch that holds its job before asking to be retried.
HOLDER_WAIT = "2s"
LOCK_NOT_AVAILABLE = "55P03"
# Core tables: the batch writes go around the ORM unit of work (no per-row UPDATE, no RETURNING).
ACCOUNTS, ENTRIES, JOBS, TRANSFERS = (cast(Table, m.__table__) for m in (Account, Entry, Job, Transfer))
_STATUS = select(JOBS.c.status, JOBS.c.available_at).where(JOBS.c.id == bindparam("id"))


@dataclass
class PostingReport:
    posted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    own_job_busy: bool = False


@dataclass
class _Claimed:
    """A claimed job and its transfer (None if it has none), read in the claiming statement."""

    job_id: str
    transfer_id: str | None
    status: str | None
    source: str
    destination: str
    amount: int
    currency: str
    description: str | None
    kind: str | None = None


@dataclass
class _Balance:
    status: str
    kind: str
    balance: int
    owner_id: str | None = None


def limit_key(kind: str | None, source: _Balance, currency: str) -> UsageKey | None:
    """Whose outgoing limit a posting charges: a customer's own transfer only (not the bank's deposits, withdrawals
    and reversals)."""
    if kind != "transfer" or source.kind != "customer" or source.owner_id is None:
        return None
    return source.owner_id, currency


def lock_limits(
    s: Session, postings: list[tuple[str | None, _Balance, str]], defaults: DefaultLimits, now: datetime
) -> dict[UsageKey, Usage]:
    keys = {k for kind, source, currency in postings if (k := limit_key(kind, source, currency))}
    return lock_usage(s, keys, defaults, now)


def post_transfer_jobs(
    db: Database, job_id: str, *, batch_size: int = 100, limits: DefaultLimits = NO_DEFAULT_LIMITS
) -> PostingReport:
    """Post job_id (and other due transfer jobs, up to batch_size). Safe under any number of duplicate calls.
    `limits`: the bank's default outgoing limits (customers' own limits apply whatever is passed)."""
    try:
        if not _maybe_due(db, job_id):
            return PostingReport()  # posted, failed or cancelled already (a duplicate delivery), or not yet due
        report = _post_batch(db, job_id, batch_size, limits=limits)
        if report.own_job_busy:
            status = _wait_for_holder(db, job_id)
            if status == "queued":  # the batch that held it ended without finishing it: post it now
                again = _post_batch(db, job_id, batch_size, limits=limits)
                report.posted += again.posted
                report.failed += again.failed
                report.own_job_busy = again.own_job_busy
            elif status is not None:
                report.own_job_busy = False  # the holder finished it
        return report
    except REJECTED:
        log.exception("posting: batch around job %s rejected by the database; posting one by one", job_id)
    except OperationalError as exc:
        raise TransientError(str(exc.orig)) from exc
    return _post_batch(db, job_id, 1, only_own=True, limits=limits)


def _maybe_due(db: Database, job_id: str) -> bool:
    """One indexed look-up without locks: a terminal job stays terminal, so only a queued one is worth a claim."""
    with db.statement() as conn:
        row = conn.execute(_STATUS, {"id": job_id}).first()
    return row is not None and row.status == "queued" and as_utc(row.available_at) <= utcnow()


def _wait_for_holder(db: Database, job_id: str) -> str | None:
    """Our job is in another worker's open batch. Wait (briefly) for that transaction to end rather than ask the
    broker for a retry, and return the job's status then; None if the wait timed out (the caller reports
    own_job_busy and the task retries as before). Waiting holds no other lock, so it cannot deadlock."""
    if not db.is_postgres:
        return None  # SQLite serialises writers: no batch is ever open beside ours
    try:
        with db.transaction() as s:
            s.execute(text(f"SET LOCAL lock_timeout = '{HOLDER_WAIT}'"))
            return s.scalar(select(Job.status).where(Job.id == job_id).with_for_update())
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return None
        raise


def post_transfer_jobs_many(
    db: Database, job_ids: list[str], *, batch_size: int = 100, limits: DefaultLimits = NO_DEFAULT_LIMITS
) -> PostingReport:
    """Post these jobs (one message for many, core.outbox.MANY), batch_size a transaction, topped up with other
    due jobs as post_transfer_jobs does. Jobs that another batch holds, or a batch the database rejects, go one by
    one through post_transfer_jobs, with its waiting and fallback."""
    report = PostingReport()
    try:
        pending = _still_due(db, job_ids)
        while pending:
            try:
                part = _post_batch(db, pending[0], batch_size, limits=limits, also=pending[1:batch_size])
            except REJECTED:
                log.exception("posting: batch around job %s rejected by the database; posting one by one", pending[0])
                part = None
            done = set(part.posted) | set(part.failed) if part else set()
            if part is None or not done & set(pending):
                for job_id in pending:
                    _add(report, post_transfer_jobs(db, job_id, batch_size=batch_size, limits=limits))
                return report
            _add(report, part)
            report.own_job_busy = False
            pending = _still_due(db, [j for j in pending if j not in done])
    except OperationalError as exc:
        raise TransientError(str(exc.orig)) from exc
    return report


def _add(report: PostingReport, part: PostingReport) -> None:
    report.posted += part.posted
    report.failed += part.failed
    report.own_job_busy = report.own_job_busy or part.own_job_busy


def _still_due(db: Database, job_ids: list[str]) -> list[str]:
    """Those of job_ids still queued and due, in the order given, in one statement without locks."""
    if not job_ids:
        return []
    now = utcnow()
    with db.statement() as conn:
        due = {row.id for row in conn.execute(
            select(JOBS.c.id, JOBS.c.available_at).where(JOBS.c.id.in_(job_ids), JOBS.c.status == "queued"))
            if as_utc(row.available_at) <= now}
    return [j for j in dict.fromkeys(job_ids) if j in due]


def _claim(s: Session, job_id: str, batch_size: int, only_own: bool, now: datetime,
           also: list[str] | None = None) -> list[_Claimed]:
    """Lock our own job (and `also`, the others of its message) by primary key, then up to batch_size in all with
    other due ones (oldest first, served by the (status, available_at) index), each with its transfer.
    SKIP LOCKED: workers never wait on each other."""
    query = (
        select(
            Job.id,
            Transfer.id,
            Transfer.status,
            Transfer.source_account_id,
            Transfer.destination_account_id,
            Transfer.amount,
            Transfer.currency,
            Transfer.description,
            Transfer.kind,
        )
        .select_from(Job)
        .outerjoin(Transfer, Transfer.job_id == Job.id)
        .where(Job.task_name == POSTING_TASK, Job.status == "queued", Job.available_at <= now)
    )
    own = [job_id, *(also or ())]
    rows = list(s.execute(query.where(Job.id.in_(own)).with_for_update(skip_locked=True, of=Job)))
    if not only_own and batch_size > len(rows):
        # Even when another batch holds our job, post what else is due meanwhile (the caller then waits for it).
        others = query.where(Job.id.not_in(own)).order_by(Job.available_at).limit(batch_size - len(rows))
        rows += s.execute(others.with_for_update(skip_locked=True, of=Job))
    return [_Claimed(*row) for row in rows]


def _post_batch(
    db: Database, job_id: str, batch_size: int, *, only_own: bool = False, limits: DefaultLimits = NO_DEFAULT_LIMITS,
    also: list[str] | None = None,
) -> PostingReport:
    report = PostingReport()
    try:
        with db.transaction() as s:
            now = utcnow()
            claimed = _claim(s, job_id, batch_size, only_own, now, also)
            if job_id not in {c.job_id for c in claimed}:
                status = s.scalar(select(Job.status).where(Job.id == job_id))
                report.own_job_busy = status == "queued"
            if claimed:
                _apply(s, claimed, report, now, postgres=db.is_postgres, limits=limits)
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


def _apply(
    s: Session,
    claimed: list[_Claimed],
    report: PostingReport,
    now: datetime,
    *,
    postgres: bool,
    limits: DefaultLimits = NO_DEFAULT_LIMITS,
) -> None:
    """Decide every claimed job in memory against the locked balances, then write the batch with a handful of
    set-based statements, whatever its size."""
    account_ids = sorted({a for c in claimed if c.transfer_id for a in (c.source, c.destination)})
    # FOR NO KEY UPDATE: balance is not a key, so foreign-key checks of concurrent accepts are not blocked.
    locked = (
        select(Account.id, Account.status, Account.kind, Account.balance, Account.owner_id)
        .where(Account.id.in_(account_ids))
        .order_by(Account.id)
        .with_for_update(key_share=True)
    )
    accounts = {a.id: _Balance(*a[1:]) for a in s.execute(locked)} if account_ids else {}
    pending = [c for c in claimed if c.transfer_id and c.status == "pending"]
    usage = lock_limits(s, [(c.kind, accounts[c.source], c.currency) for c in pending], limits, now)
    entries: list[dict[str, Any]] = []
    posted: list[tuple[str, str]] = []  # (job id, transfer id)
    refused: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)  # (code, message) -> jobs
    invalid: list[str] = []
    for c in claimed:
        if c.transfer_id is None or c.status != "pending":
            invalid.append(c.job_id)
            report.failed.append(c.job_id)
            continue
        source, destination = accounts[c.source], accounts[c.destination]
        failure = _refusal(c, source, destination)
        key = limit_key(c.kind, source, c.currency)
        if failure is None and key is not None:
            failure = usage[key].refusal(c.amount)
        if failure:
            refused[failure].append((c.job_id, c.transfer_id))
            report.failed.append(c.job_id)
            continue
        source.balance -= c.amount
        destination.balance += c.amount
        if key is not None:
            usage[key].charge(c.amount)
        for account_id, account, amount in ((c.source, source, -c.amount), (c.destination, destination, c.amount)):
            entries.append(
                {
                    "transfer_id": c.transfer_id,
                    "account_id": account_id,
                    "currency": c.currency,
                    "amount": amount,
                    "balance_after": account.balance,
                    "description": c.description,
                    "posted_at": now,
                }
            )
        posted.append((c.job_id, c.transfer_id))
        report.posted.append(c.job_id)
    if claimed:
        job_events_written(s)  # every claimed job ends below, by Core UPDATEs the ORM does not see
    if entries:
        s.execute(insert(ENTRIES), entries)  # one multi-row INSERT, nothing returned
    if accounts:
        _set_balances(s, accounts, now, postgres)
    save_usage(s, usage, now)
    if posted:
        s.execute(
            update(TRANSFERS).where(TRANSFERS.c.id.in_([t for _, t in posted])).values(status="posted", posted_at=now)
        )
        _finish(s, posted, "succeeded", None, None, "posted", now, postgres)
    for (code, message), rows in refused.items():
        s.execute(
            update(TRANSFERS).where(TRANSFERS.c.id.in_([t for _, t in rows])).values(status="failed", failure_code=code)
        )
        _finish(s, rows, "failed", code, message, "failed", now, postgres)
    if invalid:
        s.execute(
            update(JOBS)
            .where(JOBS.c.id.in_(invalid))
            .values(
                status="failed",
                attempts=JOBS.c.attempts + 1,
                result=None,
                error_code="invalid_state",
                error_message="The transfer was not pending when its job ran.",
                updated_at=now,
                finished_at=now,
            )
        )


_SET_BALANCES = text(
    "UPDATE accounts SET balance = v.balance, updated_at = :now "
    "FROM (SELECT unnest(CAST(:ids AS VARCHAR[])) AS id, unnest(CAST(:balances AS BIGINT[])) AS balance) AS v "
    "WHERE accounts.id = v.id"
)
_FINISH_JOBS = text(
    "UPDATE jobs SET status = :status, attempts = jobs.attempts + 1, error_code = :code, error_message = :message, "
    "updated_at = :now, finished_at = :now, "
    "result = jsonb_build_object('transfer_id', v.transfer_id, 'status', CAST(:transfer_status AS TEXT)) "
    "FROM (SELECT unnest(CAST(:job_ids AS VARCHAR[])) AS id, unnest(CAST(:transfer_ids AS VARCHAR[])) AS transfer_id) "
    "AS v WHERE jobs.id = v.id"
)


def _set_balances(s: Session, accounts: dict[str, _Balance], now: datetime, postgres: bool) -> None:
    if postgres:
        ids = list(accounts)
        s.execute(_SET_BALANCES, {"ids": ids, "balances": [accounts[a].balance for a in ids], "now": now})
        return
    s.execute(  # SQLite (embedded default): one prepared UPDATE by primary key, executed for every row
        update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("_id")).values(balance=bindparam("_balance"), updated_at=now),
        [{"_id": a, "_balance": b.balance} for a, b in accounts.items()],
    )


def _finish(
    s: Session,
    rows: list[tuple[str, str]],
    status: str,
    code: str | None,
    message: str | None,
    transfer_status: str,
    now: datetime,
    postgres: bool,
) -> None:
    """The jobs' terminal status, with each job's result {transfer_id, status} as jobs.finish would write it."""
    if postgres:
        s.execute(
            _FINISH_JOBS,
            {
                "status": status,
                "code": code,
                "message": message,
                "now": now,
                "transfer_status": transfer_status,
                "job_ids": [j for j, _ in rows],
                "transfer_ids": [t for _, t in rows],
            },
        )
        return
    s.execute(
        update(JOBS)
        .where(JOBS.c.id == bindparam("_id"))
        .values(
            status=status,
            attempts=JOBS.c.attempts + 1,
            error_code=code,
            error_message=message,
            updated_at=now,
            finished_at=now,
            result=bindparam("_result", type_=JOBS.c.result.type),
        ),
        [{"_id": j, "_result": {"transfer_id": t, "status": transfer_status}} for j, t in rows],
    )


class _Posting(Protocol):
    amount: int


def _refusal(t: _Posting, source: _Balance | Account, destination: _Balance | Account) -> tuple[str, str] | None:
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
