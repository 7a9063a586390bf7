"""Posting a batch job: every item of one batch in one transaction, each batch exactly once.

The job is claimed with SKIP LOCKED (a duplicate delivery finds it taken or finished), the accounts of all items
are locked in id order (overlapping batches and single transfers never deadlock), the items are decided in order
in memory against the locked balances, and entries, balances, transfers and the job are written set-based in one
commit. Atomic: one refusal and nothing is written but the failure. Independent: what can post does. If the
database rejects the set-based write, the items go again one by one, each in a savepoint. Items charge their
sender's outgoing limits (core.limits) like single transfers: an item over the allowance fails `limit_exceeded`."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db import Database, job_events_written
from core.errors import TransientError
from core.limits import NO_DEFAULT_LIMITS, DefaultLimits, Usage, UsageKey, save_usage
from core.models import Account, Job, Transfer, TransferBatch
from core.transfers.posting import (
    ACCOUNTS,
    ENTRIES,
    JOBS,
    REJECTED,
    TRANSFERS,
    _Balance,
    _maybe_due,
    _refusal,
    _set_balances,
    _wait_for_holder,
    limit_key,
    lock_limits,
)

log = logging.getLogger(__name__)
BATCH_TASK = "transfers.post_batch"
BATCH_FAILED = ("batch_failed", "Another item of this atomic batch could not be posted, so none was.")
Refusal = tuple[str, str]


@dataclass
class BatchReport:
    posted: int = 0
    failed: int = 0
    status: str | None = None  # the job's terminal status, when this call finished it
    own_job_busy: bool = False


@dataclass
class Item:
    transfer_id: str
    index: int
    status: str
    source: str
    destination: str
    amount: int
    currency: str
    description: str | None


def post_transfer_batch(db: Database, job_id: str, *, limits: DefaultLimits = NO_DEFAULT_LIMITS) -> BatchReport:
    """Post the batch job job_id. Safe under any number of duplicate, concurrent or late calls. `limits`: the
    bank's default outgoing limits (customers' own limits apply whatever is passed)."""
    try:
        if not _maybe_due(db, job_id):
            return BatchReport()  # finished already (a duplicate delivery), or unknown
        report = _post_guarded(db, job_id, limits)
        if report.own_job_busy:
            status = _wait_for_holder(db, job_id)
            if status == "queued":  # the holder rolled back: post it now
                report = _post_guarded(db, job_id, limits)
            elif status is not None:
                report.own_job_busy = False  # the holder finished it
        return report
    except OperationalError as exc:
        raise TransientError(str(exc.orig)) from exc


def _post_guarded(db: Database, job_id: str, limits: DefaultLimits) -> BatchReport:
    try:
        return _post(db, job_id, limits, set_based=True)
    except REJECTED:
        log.exception("posting: batch job %s rejected by the database; posting its items one by one", job_id)
    return _post(db, job_id, limits, set_based=False)


def _post(db: Database, job_id: str, limits: DefaultLimits, *, set_based: bool) -> BatchReport:
    try:
        with db.transaction() as s:
            now = utcnow()
            claimed = s.scalar(
                select(Job.id)
                .where(Job.id == job_id, Job.task_name == BATCH_TASK, Job.status == "queued", Job.available_at <= now)
                .with_for_update(skip_locked=True)
            )
            if claimed is None:
                return BatchReport(own_job_busy=s.scalar(select(Job.status).where(Job.id == job_id)) == "queued")
            atomic = bool(s.scalar(select(TransferBatch.atomic).where(TransferBatch.job_id == job_id)))
            items = _items(s, job_id)
            accounts = _lock_accounts(s, items)
            usage = lock_limits(s, [("transfer", accounts[i.source], i.currency) for i in items], limits, now)
            if set_based:
                outcomes = _apply_set_based(s, items, accounts, usage, atomic, now, db.is_postgres)
            else:
                outcomes = _apply_one_by_one(s, items, accounts, usage, atomic, now)
            return _record(s, job_id, items, outcomes, atomic, now)
    except DBAPIError as exc:
        if isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False):
            raise TransientError(str(exc.orig)) from exc
        raise


def _items(s: Session, job_id: str) -> list[Item]:
    columns = (
        Transfer.id,
        Transfer.batch_index,
        Transfer.status,
        Transfer.source_account_id,
        Transfer.destination_account_id,
        Transfer.amount,
        Transfer.currency,
        Transfer.description,
    )
    rows = s.execute(select(*columns).where(Transfer.job_id == job_id).order_by(Transfer.batch_index))
    return [Item(*row) for row in rows]  # type: ignore[arg-type]  # batch_index is set on every batch item


def _lock_accounts(s: Session, items: list[Item]) -> dict[str, _Balance]:
    """FOR NO KEY UPDATE in id order: the same order every posting path takes, so none waits on another in a cycle."""
    ids = sorted({a for i in items for a in (i.source, i.destination)})
    if not ids:
        return {}
    locked = (
        select(Account.id, Account.status, Account.kind, Account.balance, Account.owner_id)
        .where(Account.id.in_(ids))
        .order_by(Account.id)
        .with_for_update(key_share=True)
    )
    return {a.id: _Balance(*a[1:]) for a in s.execute(locked)}


def decide(
    items: list[Item], accounts: dict[str, _Balance], now: datetime, usage: dict[UsageKey, Usage] | None = None
) -> tuple[list[Refusal | None], list[dict[str, Any]]]:
    """Each item in order against the balances and limit usage the earlier ones left: its refusal (None: it
    posts) and the entries of those that post. Moves the balances in `accounts` and the usage in `usage`."""
    outcomes: list[Refusal | None] = []
    entries: list[dict[str, Any]] = []
    usage = {} if usage is None else usage
    for item in items:
        refusal = _refusal_of(item, accounts, usage)
        outcomes.append(refusal)
        if refusal is None:
            entries += _move(item, accounts, usage, now)
    return outcomes, entries


def _usage_of(item: Item, accounts: dict[str, _Balance], usage: dict[UsageKey, Usage]) -> Usage | None:
    key = limit_key("transfer", accounts[item.source], item.currency)
    return usage.get(key) if key is not None else None


def _refusal_of(item: Item, accounts: dict[str, _Balance], usage: dict[UsageKey, Usage]) -> Refusal | None:
    if item.status != "pending":
        return "invalid_state", "The transfer was not pending when its batch ran."
    refusal = _refusal(item, accounts[item.source], accounts[item.destination])
    allowance = _usage_of(item, accounts, usage)
    return refusal or (allowance.refusal(item.amount) if allowance else None)


def _move(
    item: Item, accounts: dict[str, _Balance], usage: dict[UsageKey, Usage], now: datetime
) -> list[dict[str, Any]]:
    source, destination = accounts[item.source], accounts[item.destination]
    source.balance -= item.amount
    destination.balance += item.amount
    allowance = _usage_of(item, accounts, usage)
    if allowance:
        allowance.charge(item.amount)
    return [
        {
            "transfer_id": item.transfer_id,
            "account_id": account_id,
            "currency": item.currency,
            "amount": amount,
            "balance_after": account.balance,
            "description": item.description,
            "posted_at": now,
        }
        for account_id, account, amount in (
            (item.source, source, -item.amount),
            (item.destination, destination, item.amount),
        )
    ]


def _apply_set_based(
    s: Session,
    items: list[Item],
    accounts: dict[str, _Balance],
    usage: dict[UsageKey, Usage],
    atomic: bool,
    now: datetime,
    postgres: bool,
) -> list[Refusal | None]:
    outcomes, entries = decide(items, accounts, now, usage)
    if atomic and any(outcomes):
        return _all_fail(outcomes)
    if entries:
        s.execute(insert(ENTRIES), entries)
        moved = {a for i, o in zip(items, outcomes, strict=True) if o is None for a in (i.source, i.destination)}
        _set_balances(s, {a: accounts[a] for a in moved}, now, postgres)
        save_usage(s, usage, now)
    return outcomes


def _apply_one_by_one(
    s: Session,
    items: list[Item],
    accounts: dict[str, _Balance],
    usage: dict[UsageKey, Usage],
    atomic: bool,
    now: datetime,
) -> list[Refusal | None]:
    """Each posting in its own savepoint, so the one the database refuses is told apart (the rare path)."""
    outcomes: list[Refusal | None] = []
    everything = s.begin_nested()
    for item in items:
        refusal = _refusal_of(item, accounts, usage)
        if refusal is None:
            before = {a: accounts[a].balance for a in (item.source, item.destination)}
            try:
                with s.begin_nested():
                    s.execute(insert(ENTRIES), _move(item, accounts, usage, now))
                    for account_id in (item.source, item.destination):
                        s.execute(
                            update(ACCOUNTS)
                            .where(ACCOUNTS.c.id == account_id)
                            .values(balance=accounts[account_id].balance, updated_at=now)
                        )
            except REJECTED:
                log.error("posting: item %s of a batch rejected by the database constraints", item.index)
                for account_id, balance in before.items():
                    accounts[account_id].balance = balance
                allowance = _usage_of(item, accounts, usage)
                if allowance:
                    allowance.charge(-item.amount)
                refusal = ("posting_rejected", "The ledger refused this posting.")
        outcomes.append(refusal)
    if atomic and any(outcomes):
        everything.rollback()
        return _all_fail(outcomes)
    save_usage(s, usage, now)
    everything.commit()
    return outcomes


def _all_fail(outcomes: list[Refusal | None]) -> list[Refusal | None]:
    return [o or BATCH_FAILED for o in outcomes]


def _record(
    s: Session, job_id: str, items: list[Item], outcomes: list[Refusal | None], atomic: bool, now: datetime
) -> BatchReport:
    """The items' statuses and the job's terminal status with each item's outcome in its result."""
    posted = [i.transfer_id for i, o in zip(items, outcomes, strict=True) if o is None and i.status == "pending"]
    failed: dict[str, list[str]] = defaultdict(list)
    for item, outcome in zip(items, outcomes, strict=True):
        if outcome is not None and item.status == "pending":
            failed[outcome[0]].append(item.transfer_id)
    if posted:
        s.execute(update(TRANSFERS).where(TRANSFERS.c.id.in_(posted)).values(status="posted", posted_at=now))
    for failure_code, ids in failed.items():
        s.execute(update(TRANSFERS).where(TRANSFERS.c.id.in_(ids)).values(status="failed", failure_code=failure_code))
    report = BatchReport(posted=sum(o is None for o in outcomes), failed=sum(o is not None for o in outcomes))
    result = {
        "atomic": atomic,
        "posted": report.posted,
        "failed": report.failed,
        "items": [
            {
                "index": item.index,
                "transfer_id": item.transfer_id,
                "status": "posted" if outcome is None else "failed",
                "failure_code": outcome[0] if outcome else None,
            }
            for item, outcome in zip(items, outcomes, strict=True)
        ],
    }
    report.status = "failed" if atomic and report.failed else "succeeded"
    code = message = None
    if report.status == "failed":
        code = BATCH_FAILED[0]
        bad = report.failed - sum(o == BATCH_FAILED for o in outcomes)
        message = f"{bad} of {len(items)} items could not be posted, so none was (see result.items)."
    job_events_written(s)
    s.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id)
        .values(
            status=report.status,
            attempts=JOBS.c.attempts + 1,
            result=result,
            error_code=code,
            error_message=message,
            updated_at=now,
            finished_at=now,
        )
    )
    return report
