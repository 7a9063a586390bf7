"""Administration: staff users and the ledger check."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas import AdminUserIn, AuditArgs, AuditPage, LedgerCheckOut, QueuesOut, UserOut
from api.security import admin_required, bank, current_user
from core import audit, jobs, ledger, users
from tasks.publisher import workers_report

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
@blp.doc(
    security=BEARER,
    description="Admin. Read on one snapshot: every account's balance equals the sum of its entries "
    "(`balance_mismatch`), no customer account is below zero (`negative_balance`), every posting and every currency "
    "sums to zero (`posting_not_balanced`, `currency_not_balanced`), every loan's own account holds minus its "
    "outstanding principal (`loan_account_mismatch`), and each currency's loan charges receivable holds minus the "
    "interest accrued and late fees charged on unpaid instalments (`loan_charges_mismatch`). `ok` when none.",
)
@jwt_required()
@admin_required
@blp.response(200, LedgerCheckOut)
def ledger_check() -> dict:
    return ledger.check_ledger(bank().db)


@blp.get("/queues")
@blp.doc(
    security=BEARER,
    description="Per queue: depth and the age of the oldest waiting job (from the database). Workers: who answered "
    "a ping now; `workers_status` says whether an empty or null `workers` means none answered or nobody could ask.",
)
@jwt_required()
@admin_required
@blp.response(200, QueuesOut)
def queues() -> dict:
    return {"queues": jobs.queue_report(bank().db), **workers_report()}


@blp.get("/audit")
@blp.doc(security=BEARER, description="Append-only audit events, newest first.")
@jwt_required()
@admin_required
@blp.arguments(AuditArgs, location="query")
@blp.response(200, AuditPage)
def audit_events(args: dict) -> dict:
    return audit.list_events(bank().db, action=args["action"], limit=args["limit"], cursor=args["cursor"])
