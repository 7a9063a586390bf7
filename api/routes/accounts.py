"""Accounts and their statements."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas import AccountIn, AccountListArgs, AccountOut, AccountPage, EntryPage, PageArgs
from api.security import bank, current_user, staff_required
from core import accounts

blp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Accounts and statements")
BEARER = [{"bearerAuth": []}]


@blp.post("")
@blp.doc(security=BEARER)
@jwt_required()
@blp.arguments(AccountIn)
@blp.response(201, AccountOut)
def open_account(body: dict) -> tuple[dict, int]:
    return accounts.open_account(bank().db, current_user(), body["currency"], body["type"], body.get("owner_id")), 201


@blp.get("")
@blp.doc(security=BEARER)
@jwt_required()
@blp.arguments(AccountListArgs, location="query")
@blp.response(200, AccountPage)
def list_accounts(args: dict) -> dict:
    return accounts.list_accounts(
        bank().db, current_user(), owner_id=args["owner_id"], limit=args["limit"], cursor=args["cursor"]
    )


@blp.get("/<account_id>")
@blp.doc(security=BEARER)
@jwt_required()
@blp.response(200, AccountOut)
def get_account(account_id: str) -> dict:
    return accounts.get_account(bank().db, current_user(), account_id)


@blp.get("/<account_id>/entries")
@blp.doc(security=BEARER)
@jwt_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, EntryPage)
def entries(args: dict, account_id: str) -> dict:
    return accounts.statement(bank().db, current_user(), account_id, limit=args["limit"], cursor=args["cursor"])


@blp.post("/<account_id>/freeze")
@blp.doc(security=BEARER)
@jwt_required()
@staff_required
@blp.response(200, AccountOut)
def freeze(account_id: str) -> dict:
    return accounts.set_frozen(bank().db, current_user(), account_id, True)


@blp.post("/<account_id>/unfreeze")
@blp.doc(security=BEARER)
@jwt_required()
@staff_required
@blp.response(200, AccountOut)
def unfreeze(account_id: str) -> dict:
    return accounts.set_frozen(bank().db, current_user(), account_id, False)
