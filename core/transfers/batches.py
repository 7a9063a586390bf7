"""Accepting a batch of transfers as one job: every item passes the single-transfer checks at once, or the
request is refused naming each bad item's index; then one job, one batch row and a transfer per item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from core import audit, jobs
from core.accounts import load_accounts, visible_among
from core.bank import Bank
from core.clock import utcnow
from core.errors import NotFound, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.models import Account, Transfer, TransferBatch, User, new_id
from core.money import format_minor
from core.transfers.confirmation import threshold_minor
from core.transfers.requests import TransferRequest, check_transfer

MAX_ITEMS = 1000
KIND = "transfer_batch"
TRANSFERS = cast(Table, Transfer.__table__)


@dataclass(frozen=True)
class BatchRequest:
    items: tuple[TransferRequest, ...]
    atomic: bool = False


@dataclass(frozen=True)
class _Checked:
    source: Account
    destination: Account
    amount: int
    item: TransferRequest


def request_transfer_batch(
    bank: Bank, user: User, cmd: BatchRequest, *, idempotency_key: str | None, body: dict[str, Any]
) -> Accepted:
    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        return _accepted(s, user, cmd, check_batch(bank, s, user, cmd))

    return accept(
        bank.db,
        user_id=user.id,
        key=idempotency_key,
        request_fingerprint=fingerprint("POST", "/api/v1/transfers/batch", body),
        create=create,
        ttl_seconds=bank.settings.idempotency_ttl_seconds,
    )


def check_batch(bank: Bank, s: Session, user: User, cmd: BatchRequest) -> list[_Checked]:
    """Each item as a single transfer would be checked (403 for the sender as a whole), plus: no execute_at,
    and no amount that would need a one-time code. Every bad item is named in one 422."""
    if not 1 <= len(cmd.items) <= MAX_ITEMS:
        raise ValidationFailed("A batch has 1 to 1000 items.", errors={"items": [f"Give 1 to {MAX_ITEMS} items."]})
    accounts = load_accounts(s, [a for i in cmd.items for a in (i.source_account_id, i.destination_account_id)],
                             [i.destination_account_number for i in cmd.items])
    checked: list[_Checked] = []
    errors: dict[str, list[str]] = {}
    item_errors: list[dict[str, Any]] = []
    for index, item in enumerate(cmd.items):
        source: Account | None = None
        try:
            source = visible_among(accounts, user, item.source_account_id)
            if item.execute_at is not None:
                raise ValidationFailed(
                    "A batch posts at once.",
                    code="execute_at_not_allowed",
                    errors={"execute_at": ["Not allowed in a batch; schedule single transfers instead."]},
                )
            source, destination, amount, _ = check_transfer(bank, s, user, item, accounts)
            if amount >= threshold_minor(bank.settings, item.currency):
                raise ValidationFailed(
                    "This amount needs a one-time code.",
                    code="confirmation_required",
                    errors={"amount": ["At or above the confirmation threshold: send it as a single transfer."]},
                )
            checked.append(_Checked(source, destination, amount, item))
        except (NotFound, ValidationFailed) as exc:
            for field, messages in _fields(exc, item, source).items():
                errors.setdefault(f"items.{index}.{field}", []).extend(messages)
                item_errors.append({"index": index, "field": field, "code": exc.code, "detail": exc.detail})
    if item_errors:
        bad = len({e["index"] for e in item_errors})
        raise ValidationFailed(
            f"{bad} of {len(cmd.items)} items cannot be accepted; nothing was. See errors.",
            code="batch_items_invalid",
            errors=errors,
            extra={"item_errors": item_errors},
        )
    return checked


def _fields(exc: NotFound | ValidationFailed, item: TransferRequest, source: Account | None) -> dict[str, list[str]]:
    """Which field of the item the refusal is about."""
    if exc.errors:
        return exc.errors
    destination = "destination_account_id" if item.destination_account_id else "destination_account_number"
    if source is None:
        field = "source_account_id"
    elif exc.code == "currency_mismatch":
        field = "currency"
    elif exc.code.startswith("account_") and exc.code != "account_not_found" and source.status != "active":
        field = "source_account_id"
    else:
        field = destination
    return {field: [exc.detail]}


def _accepted(s: Session, user: User, cmd: BatchRequest, checked: list[_Checked]) -> tuple[int, dict[str, Any], str]:
    job_id = new_id()
    batch = TransferBatch(id=new_id(), job_id=job_id, user_id=user.id, atomic=cmd.atomic, item_count=len(checked))
    s.add(batch)
    job = jobs.new_job(s, kind=KIND, user_id=user.id, resource_type="transfer_batch", resource_id=batch.id,
                       job_id=job_id)
    job.attempts = 0
    now = utcnow()
    # Core INSERT: a thousand rows in a few round trips. receipt_at is set: the batch's job reports the outcome,
    # not a thousand receipts.
    s.execute(
        insert(TRANSFERS),
        [
            {
                "id": new_id(),
                "job_id": job_id,
                "batch_index": index,
                "kind": "transfer",
                "source_account_id": c.source.id,
                "destination_account_id": c.destination.id,
                "amount": c.amount,
                "currency": c.item.currency,
                "description": c.item.description,
                "status": "pending",
                "requested_by": user.id,
                "created_at": now,
                "receipt_at": now,
            }
            for index, c in enumerate(checked)
        ],
    )
    jobs.enqueue(s, job)
    totals: dict[str, int] = {}
    for c in checked:
        totals[c.item.currency] = totals.get(c.item.currency, 0) + c.amount
    audit.record(
        s,
        user.id,
        "transfer_batch.requested",
        f"transfer_batch:{batch.id}",
        job_id=job_id,
        items=len(checked),
        atomic=cmd.atomic,
        totals={currency: format_minor(total, currency) for currency, total in sorted(totals.items())},
    )
    return 202, jobs.job_view(job), job_id
