"""Transfers, deposits and withdrawals: accepted as jobs."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.jobs_http import IDEMPOTENCY_HEADER, idempotency_key, idempotency_required, job_response, raw_body
from api.schemas import ConfirmIn, JobOut, MovementIn, ReversalIn, TransferIn, TransferOut
from api.schemas_transfer_batches import TransferBatchIn
from api.security import bank, current_user, staff_required
from core import transfers

blp = Blueprint("transfers", __name__, url_prefix="/api/v1", description="Money movements")
BEARER = [{"bearerAuth": []}]


TRANSFER_DOC = """A job (202 + Location). Checked at once: accounts (404), currency (422 `currency_mismatch`),
same account (422 `same_account`), frozen (422 `account_frozen`), KYC (403 `kyc_required`). Checked by the worker,
failing the job: funds (`insufficient_funds`) and the sender's daily and monthly outgoing limits in the currency
(`limit_exceeded`, the error message names what remains today and this month; see `GET /api/v1/auth/me` and
`PUT /api/v1/customers/{id}/limits`)."""


@blp.post("/transfers")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER], description=TRANSFER_DOC)
@jwt_required()
@idempotency_required
@blp.arguments(TransferIn)
@blp.response(202, JobOut)
def create_transfer(body: dict):  # type: ignore[no-untyped-def]
    accepted = transfers.request_transfer(
        bank(), current_user(), transfers.TransferRequest(**body), idempotency_key=idempotency_key(), body=raw_body()
    )
    return job_response(accepted)


BATCH_DOC = """Up to 1000 transfers as one job (202 + Location, Idempotency-Key as for every job POST).

Every item is checked at once as a single transfer is; if any fails, nothing is accepted and the 422
`batch_items_invalid` names each bad item in `errors` (`items.3.currency`) and in `item_errors`
(`[{index, field, code, detail}]`): `account_not_found` (missing or not yours), `currency_mismatch`,
`same_account`, `account_frozen`, `invalid_amount`, ... A sender who may not move money is a 403 (`kyc_required`)
for the whole batch. Batches do not take `execute_at`, and an item at or above BANKQ_CONFIRMATION_THRESHOLD is
refused (`confirmation_required`): send large or scheduled payments as single transfers.

The worker posts the batch in one transaction, items in order (funds and the sender's outgoing limits are checked
there: an item over the remaining allowance fails `limit_exceeded`). The job's `result`:
`{atomic, posted, failed, items: [{index, transfer_id, status: "posted"|"failed", failure_code}]}`.
`atomic: false`: each item posts on its own; the job `succeeded` whatever the items' outcomes.
`atomic: true`: all post or none does; if one cannot (e.g. `insufficient_funds`), the job `failed` with
`batch_failed`, no money moves, and the other items show `failure_code: "batch_failed"`.
Each item is a transfer (`GET /api/v1/transfers/{transfer_id}`) whose `job_id` is the batch's job."""


@blp.post("/transfers/batch")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER], description=BATCH_DOC)
@jwt_required()
@idempotency_required
@blp.arguments(TransferBatchIn)
@blp.response(202, JobOut)
def create_transfer_batch(body: dict):  # type: ignore[no-untyped-def]
    cmd = transfers.BatchRequest(
        items=tuple(transfers.TransferRequest(**item) for item in body["items"]), atomic=body["atomic"]
    )
    accepted = transfers.request_transfer_batch(
        bank(), current_user(), cmd, idempotency_key=idempotency_key(), body=raw_body()
    )
    return job_response(accepted)


@blp.get("/transfers/<transfer_id>")
@blp.doc(security=BEARER)
@jwt_required()
@blp.response(200, TransferOut)
def get_transfer(transfer_id: str) -> dict:
    return transfers.get_transfer(bank(), current_user(), transfer_id)


@blp.post("/transfers/<transfer_id>/confirm")
@blp.doc(
    security=BEARER,
    description="A transfer at or above BANKQ_CONFIRMATION_THRESHOLD waits for the one-time code sent to the "
    "account holder. The right code releases the job (202); a wrong one answers 422 invalid_code with "
    "attempts_remaining; the fifth wrong code or ten minutes without one fail the job.",
)
@jwt_required()
@blp.arguments(ConfirmIn)
@blp.response(202, JobOut)
def confirm_transfer(body: dict, transfer_id: str):  # type: ignore[no-untyped-def]
    return job_response(transfers.confirm_transfer(bank(), current_user(), transfer_id, body["code"]))


@blp.post("/transfers/<transfer_id>/cancel")
@blp.doc(security=BEARER, description="Only while scheduled or awaiting confirmation; otherwise 409.")
@jwt_required()
@blp.response(200, TransferOut)
def cancel_transfer(transfer_id: str) -> dict:
    return transfers.cancel_transfer(bank(), current_user(), transfer_id)


def _movement(kind: str, body: dict):  # type: ignore[no-untyped-def]
    accepted = transfers.request_movement(
        bank(),
        current_user(),
        transfers.MovementRequest(kind=kind, **body),
        idempotency_key=idempotency_key(),
        body=raw_body(),
    )
    return job_response(accepted)


@blp.post("/deposits")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@jwt_required()
@staff_required
@idempotency_required
@blp.arguments(MovementIn)
@blp.response(202, JobOut)
def create_deposit(body: dict):  # type: ignore[no-untyped-def]
    return _movement("deposit", body)


@blp.post("/withdrawals")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@jwt_required()
@staff_required
@idempotency_required
@blp.arguments(MovementIn)
@blp.response(202, JobOut)
def create_withdrawal(body: dict):  # type: ignore[no-untyped-def]
    return _movement("withdrawal", body)


REVERSE_DOC = """Staff (teller, admin): undo a posted transfer, deposit or withdrawal with a new, opposite posting
(destination -> source, same amount and currency); entries are never edited. A job (202 + Location,
Idempotency-Key required) posted on the transfers queue; its resource is the reversal, a transfer of kind
`reversal` whose `reverses` names the original, which then shows `reversed_by`.

At accept: 404 `transfer_not_found`; 409 `not_reversible` unless the transfer is `posted` (a reversal itself
cannot be reversed); 409 `already_reversed` while another reversal of it is pending or posted; 422
`account_frozen` / `account_closed` if either account cannot move money. By the worker: the job fails
`insufficient_funds` when the original destination no longer holds the amount, and `account_frozen` if an account
was frozen meanwhile (unfreeze, reverse, freeze again). After a failed reversal the transfer may be reversed again.
Reversals are the bank's own act: they are not counted against anyone's transfer limits."""


@blp.post("/transfers/<transfer_id>/reverse")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER], description=REVERSE_DOC)
@jwt_required()
@staff_required
@idempotency_required
@blp.arguments(ReversalIn)
@blp.response(202, JobOut)
def reverse_transfer(body: dict, transfer_id: str):  # type: ignore[no-untyped-def]
    accepted = transfers.request_reversal(
        bank(),
        current_user(),
        transfers.ReversalRequest(transfer_id=transfer_id, reason=body["reason"]),
        idempotency_key=idempotency_key(),
        body=raw_body(),
    )
    return job_response(accepted)
