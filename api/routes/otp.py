"""One-time codes: request one (a job, sent by email or SMS) and verify it. Codes are never in an answer."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.jobs_http import IDEMPOTENCY_HEADER, idempotency_key, idempotency_required, job_response
from api.schemas import JobOut
from api.schemas_otp import OtpIn, OtpVerifyIn, VerifiedOut
from api.security import bank, current_user
from core import otp

blp = Blueprint("otp", __name__, url_prefix="/api/v1/otp", description="One-time codes")
BEARER = [{"bearerAuth": []}]


@blp.post("")
@blp.doc(
    security=BEARER,
    parameters=[IDEMPOTENCY_HEADER],
    description="Sends a 6-digit code, valid 10 minutes, superseding the caller's previous code for the purpose. "
    "The job's `result` is `{otp_id, expires_at}`. At most 5 codes per user per 15 minutes (429 `too_many_codes`).",
)
@jwt_required()
@idempotency_required
@blp.arguments(OtpIn)
@blp.response(202, JobOut)
def request_code(body: dict):  # type: ignore[no-untyped-def]
    accepted = otp.request_code(
        bank().db,
        bank().settings,
        current_user(),
        purpose=body["purpose"],
        channel=body["channel"],
        idempotency_key=idempotency_key(),
    )
    return job_response(accepted)


@blp.post("/<otp_id>/verify")
@blp.doc(
    security=BEARER,
    description="422 `invalid_code` with `attempts_remaining`; 410 `expired` (expired, used or superseded); "
    "429 `too_many_attempts` after 5 wrong codes; 404 for a code that is not the caller's.",
)
@jwt_required()
@blp.arguments(OtpVerifyIn)
@blp.response(200, VerifiedOut)
def verify_code(body: dict, otp_id: str) -> dict:
    otp.verify_own_code(bank().db, bank().settings, current_user(), otp_id, body["code"])
    return {"verified": True}
