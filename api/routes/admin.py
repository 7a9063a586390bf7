"""Administration: staff users and the ledger check."""

from __future__ import annotations

from flask_jwt_extended import jwt_required
from flask_smorest import Blueprint

from api.schemas import AdminUserIn, LedgerCheckOut, UserOut
from api.security import admin_required, bank, current_user
from core import ledger, users

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Administration")
BEARER = [{"bearerAuth": []}]


@blp.post("/users")
@blp.doc(security=BEARER)
@jwt_required()
@admin_required
@blp.arguments(AdminUserIn)
@blp.response(201, UserOut)
def create_user(body: dict) -> tuple[dict, int]:
    return users.register(bank().db, users.NewUser(**body), actor_id=current_user().id), 201


@blp.get("/ledger/check")
@blp.doc(security=BEARER)
@jwt_required()
@admin_required
@blp.response(200, LedgerCheckOut)
def ledger_check() -> dict:
    return ledger.check_ledger(bank().db)
