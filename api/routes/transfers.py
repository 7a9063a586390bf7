"""Transfers, deposits and withdrawals: accepted as jobs."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.jobs_http import IDEMPOTENCY_HEADER, idempotency_key, idempotency_required, job_response, raw_body
from api.schemas import ConfirmIn, JobOut, MovementIn, TransferIn, TransferOut
from api.security import bank, current_user, staff_required
from core import transfers

blp = Blueprint("transfers", __name__, url_prefix="/api/v1", description="Money movements")
BEARER = [{"bearerAuth": []}]


@blp.post("/transfers")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@jwt_required()
@idempotency_required
@blp.arguments(TransferIn)
@blp.response(202, JobOut)
def create_transfer(body: dict):  # type: ignore[no-untyped-def]
    accepted = transfers.request_transfer(
        bank(), current_user(), transfers.TransferRequest(**body), idempotency_key=idempotency_key(), body=raw_body()
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
