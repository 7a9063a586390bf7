"""Standing orders: each due date becomes exactly one transfer, through the same path as an API transfer."""

from __future__ import annotations

from flask import request
from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.jobs_http import raw_body
from api.schemas_schedules import (
    StandingOrderDetail,
    StandingOrderIn,
    StandingOrderListArgs,
    StandingOrderOut,
    StandingOrderPage,
)
from api.security import bank, current_user
from core import standing_orders

blp = Blueprint("standing_orders", __name__, url_prefix="/api/v1/standing-orders", description="Standing orders")
BEARER = [{"bearerAuth": []}]
OPTIONAL_IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Optional: a retried request with the same key and body answers the first order again.",
}


@blp.post("")
@blp.doc(
    security=BEARER,
    parameters=[OPTIONAL_IDEMPOTENCY_KEY],
    description="Checked at once exactly as a transfer is (404 for an account that is not yours, 422 "
    "`currency_mismatch`, `same_account`, `account_frozen`, 403 `kyc_required`). Each due date (UTC) then "
    "becomes one transfer; monthly on the 29th-31st falls on a shorter month's last day.",
)
@jwt_required()
@blp.arguments(StandingOrderIn)
@blp.response(201, StandingOrderOut)
def create_standing_order(body: dict) -> tuple[dict, int, dict[str, str]]:
    accepted = standing_orders.create_standing_order(
        bank(),
        current_user(),
        standing_orders.NewStandingOrder(**body),
        idempotency_key=request.headers.get("Idempotency-Key") or None,
        body=raw_body(),
    )
    return accepted.body, accepted.status, {"Idempotent-Replayed": "true"} if accepted.replayed else {}


@blp.get("")
@blp.doc(security=BEARER, description="The caller's standing orders, newest first.")
@jwt_required()
@blp.arguments(StandingOrderListArgs, location="query")
@blp.response(200, StandingOrderPage)
def list_standing_orders(args: dict) -> dict:
    return standing_orders.list_standing_orders(bank(), current_user(), limit=args["limit"], cursor=args["cursor"])


@blp.get("/<order_id>")
@blp.doc(security=BEARER, description="The order and its latest occurrences (date, status, job, transfer).")
@jwt_required()
@blp.response(200, StandingOrderDetail)
def get_standing_order(order_id: str) -> dict:
    return standing_orders.get_standing_order(bank(), current_user(), order_id)


@blp.delete("/<order_id>")
@blp.doc(security=BEARER, description="Stops future occurrences; transfers already requested go their way.")
@jwt_required()
@blp.response(204)
def delete_standing_order(order_id: str) -> tuple[str, int]:
    standing_orders.cancel_standing_order(bank(), current_user(), order_id)
    return "", 204
