"""Customers (staff): search, profile with accounts, edits, walk-in registration and status."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas import UserOut
from api.schemas_customers import (
    CustomerOut,
    CustomerPage,
    CustomerPatchIn,
    CustomerSearchArgs,
    CustomerStatusIn,
    WalkInIn,
)
from api.security import bank, current_user, staff_required
from core import customers

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
