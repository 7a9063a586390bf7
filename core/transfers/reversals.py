"""Reversals: staff undo a posted transfer with a new, opposite posting; entries are never edited or deleted.

The reversal is a transfer of kind `reversal` (destination -> source, same amount and currency) posted by the
same worker path as any transfer, so funds and frozen accounts are checked there. At most one reversal of a
transfer is pending or posted: accept locks the original and looks, and a partial unique index is the last guard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.bank import Bank
from core.clock import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.idempotency import Accepted, accept, fingerprint
from core.models import Account, Transfer, User
from core.transfers.requests import _accepted, check_usable, live_reversal
from core.users import is_staff

MAX_REASON = 200
REVERSIBLE_KINDS = ("transfer", "deposit", "withdrawal")
ALREADY_REVERSED = "already_reversed"


@dataclass(frozen=True)
class ReversalRequest:
    transfer_id: str
    reason: str


def check_reason(reason: object) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text or len(text) > MAX_REASON:
        raise ValidationFailed("Invalid reason.", errors={"reason": [f"Give 1 to {MAX_REASON} characters."]})
    return text


def _original(s: Session, transfer_id: str) -> Transfer:
    """The transfer to reverse, locked: concurrent reversal requests for it are taken one after the other."""
    valid = isinstance(transfer_id, str) and len(transfer_id) <= 36
    original = s.get(Transfer, transfer_id, with_for_update=True) if valid else None
    if original is None:
        raise NotFound("No such transfer.", code="transfer_not_found")
    if original.kind == "reversal":
        raise Conflict("A reversal cannot itself be reversed; make a new transfer.", code="not_reversible")
    if original.kind not in REVERSIBLE_KINDS:  # loan postings: the loan's books would no longer match the ledger
        raise Conflict("A loan's postings are not reversed; its servicing corrects them.", code="not_reversible")
    if original.status != "posted":
        raise Conflict(f"Only a posted transfer can be reversed; this one is {original.status}.", code="not_reversible")
    existing = live_reversal(s, original.id)
    if existing:
        raise Conflict(f"Transfer already reversed by {existing}.", code=ALREADY_REVERSED)
    return original


def request_reversal(
    bank: Bank, user: User, cmd: ReversalRequest, *, idempotency_key: str | None, body: dict[str, Any]
) -> Accepted:
    """Staff: accept the reversal of a posted transfer, deposit or withdrawal as a job on the transfers queue."""
    if not is_staff(user):
        raise Forbidden("Only staff may reverse transfers.", code="forbidden")
    reason = check_reason(cmd.reason)

    def create(s: Session) -> tuple[int, dict[str, Any], str | None]:
        original = _original(s, cmd.transfer_id)
        source = s.get(Account, original.destination_account_id)
        destination = s.get(Account, original.source_account_id)
        assert source is not None and destination is not None  # foreign keys
        check_usable(source, "source")
        check_usable(destination, "destination")
        reversal = Transfer(
            kind="reversal",
            reverses=original.id,
            source_account_id=source.id,
            destination_account_id=destination.id,
            amount=original.amount,
            currency=original.currency,
            description=f"Reversal: {reason}",
            status="pending",
            requested_by=user.id,
            created_at=utcnow(),
        )
        return _accepted(s, user, reversal, reverses=original.id, reason=reason)

    try:
        return accept(
            bank.db,
            user_id=user.id,
            key=idempotency_key,
            request_fingerprint=fingerprint("POST", f"/api/v1/transfers/{cmd.transfer_id}/reverse", body),
            create=create,
            ttl_seconds=bank.settings.idempotency_ttl_seconds,
        )
    except IntegrityError as exc:
        if "uq_transfers_reverses_live" not in str(exc.orig):
            raise
        raise Conflict("Transfer already reversed.", code=ALREADY_REVERSED) from exc
