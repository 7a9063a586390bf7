"""Customers (staff): search, profile with accounts, edits, walk-in registration and status."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas import LimitOut, UserOut
from api.schemas_customers import (
    CustomerOut,
    CustomerPage,
    CustomerPatchIn,
    CustomerSearchArgs,
    CustomerStatusIn,
    LimitsIn,
    WalkInIn,
)
from api.security import bank, current_user, staff_required
from core import customers, limits

blp = Blueprint("customers", __name__, url_prefix="/api/v1/customers", description="Customers (staff)")
BEARER = [{"bearerAuth": []}]


@blp.get("")
@blp.doc(security=BEARER, description="Customers matching q (name, email, phone, username or account number).")
@jwt_required()
@staff_required
@blp.arguments(CustomerSearchArgs, location="query")
@blp.response(200, CustomerPage)
def search(args: dict) -> dict:
    return customers.search(bank().db, args["q"], limit=args["limit"], cursor=args["cursor"])


@blp.post("")
@blp.doc(security=BEARER, description="A walk-in customer without a password; they set one by password reset.")
@jwt_required()
@staff_required
@blp.arguments(WalkInIn)
@blp.response(201, UserOut)
def register(body: dict) -> tuple[dict, int]:
    return customers.register_walk_in(bank().db, current_user().id, customers.WalkIn(**body)), 201


@blp.get("/<customer_id>")
@blp.doc(security=BEARER)
@jwt_required()
@staff_required
@blp.response(200, CustomerOut)
def get_customer(customer_id: str) -> dict:
    return customers.get_customer(bank().db, customer_id)


@blp.patch("/<customer_id>")
@blp.doc(security=BEARER)
@jwt_required()
@staff_required
@blp.arguments(CustomerPatchIn)
@blp.response(200, CustomerOut)
def update(body: dict, customer_id: str) -> dict:
    return customers.update_customer(bank().db, current_user().id, customer_id, body)


@blp.patch("/<customer_id>/status")
@blp.doc(security=BEARER, description="Suspending ends every session; closing needs every balance at zero.")
@jwt_required()
@staff_required
@blp.arguments(CustomerStatusIn)
@blp.response(200, CustomerOut)
def set_status(body: dict, customer_id: str) -> dict:
    return customers.set_status(bank().db, current_user().id, customer_id, body["status"])


LIMITS_DOC = """Set a customer's outgoing transfer limits in one currency: `daily` (UTC day) and `monthly` (calendar
month, UTC), each a decimal string like an amount or null for the bank's default (BANKQ_DAILY_LIMIT /
BANKQ_MONTHLY_LIMIT, none if unset). They cover the customer's own transfers from all their accounts in that
currency, single and batch; the worker refuses one over the remaining allowance with `limit_exceeded`. Deposits,
withdrawals and reversals do not count. Lowering a limit below today's usage is allowed (nothing more goes out).
Answers the limits now in force and what remains. Audited (`customer.limits_set`)."""


@blp.put("/<customer_id>/limits")
@blp.doc(security=BEARER, description=LIMITS_DOC)
@jwt_required()
@staff_required
@blp.arguments(LimitsIn)
@blp.response(200, LimitOut)
def set_limits(body: dict, customer_id: str) -> dict:
    return limits.set_limits(
        bank().db, bank().settings, current_user().id, customer_id, body["currency"], body["daily"], body["monthly"]
    )
