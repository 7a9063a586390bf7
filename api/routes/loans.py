"""Loan products and loans: apply, reject, approve (a disbursement job), read the loan and its schedule."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.jobs_http import IDEMPOTENCY_HEADER, idempotency_key, idempotency_required, job_response, raw_body
from api.schemas import JobOut, PageArgs
from api.schemas_loans import (
    LoanIn,
    LoanListArgs,
    LoanOut,
    LoanPage,
    LoanProductIn,
    LoanProductOut,
    LoanProductPage,
    LoanRejectIn,
    LoanRepayIn,
    ScheduleOut,
)
from api.security import admin_required, bank, current_user, staff_required
from core import loans

blp = Blueprint("loans", __name__, url_prefix="/api/v1", description="Loans")
BEARER = [{"bearerAuth": []}]


@blp.get("/loan-products")
@blp.doc(security=BEARER, description="Every loan product, newest first (anyone signed in).")
@jwt_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, LoanProductPage)
def list_loan_products(args: dict) -> dict:
    return loans.list_products(bank(), limit=args["limit"], cursor=args["cursor"])


@blp.post("/loan-products")
@blp.doc(
    security=BEARER,
    description="Admin only. 422 when the rate is not a decimal string from 0 to 1, an amount is not a positive "
    "amount of the currency (late_fee may be 0), or a minimum exceeds its maximum.",
)
@jwt_required()
@admin_required
@blp.arguments(LoanProductIn)
@blp.response(201, LoanProductOut)
def create_loan_product(body: dict) -> tuple[dict, int]:
    return loans.create_product(bank(), current_user(), loans.NewLoanProduct(**body)), 201


@blp.post("/loans")
@blp.doc(
    security=BEARER,
    description="A customer applies. 404 `loan_product_not_found` / `account_not_found` (not yours); 422 "
    "`currency_mismatch` (the account is not in the product's currency), `account_frozen` / `account_closed`, "
    "and field errors on `amount` / `term_months` outside the product's range; 403 `kyc_required`.",
)
@jwt_required()
@blp.arguments(LoanIn)
@blp.response(201, LoanOut)
def apply_for_loan(body: dict) -> tuple[dict, int]:
    return loans.apply_for_loan(bank(), current_user(), loans.LoanApplication(**body)), 201


@blp.get("/loans")
@blp.doc(security=BEARER, description="Staff see every loan, customers their own; newest first; `?status=`.")
@jwt_required()
@blp.arguments(LoanListArgs, location="query")
@blp.response(200, LoanPage)
def list_loans(args: dict) -> dict:
    return loans.list_loans(bank(), current_user(), status=args["status"], limit=args["limit"], cursor=args["cursor"])


@blp.get("/loans/<loan_id>")
@blp.doc(security=BEARER, description="The borrower or staff; anyone else gets 404.")
@jwt_required()
@blp.response(200, LoanOut)
def get_loan(loan_id: str) -> dict:
    return loans.get_loan(bank(), current_user(), loan_id)


@blp.get("/loans/<loan_id>/schedule")
@blp.doc(
    security=BEARER,
    description="The annuity schedule, written at disbursement (empty before). Payments are equal, rounded half "
    "up to a minor unit; each month's interest is the outstanding principal × rate/12, rounded half up; the last "
    "instalment repays what is left, so principals sum to the principal. Due monthly on the disbursement's day, "
    "or a shorter month's last day. On its due date an instalment is collected from the loan's `account_id` (one "
    "transfer into the loan's own account, its interest and fee part then moved on to the bank's loan charges "
    "receivable); if the "
    "money is not there it is `overdue`, retried daily, and charged the product's late fee once after "
    "BANKQ_LOAN_GRACE_DAYS. After an early repayment the unpaid instalments are recomputed as a new annuity over the "
    "same due dates.",
)
@jwt_required()
@blp.response(200, ScheduleOut)
def get_schedule(loan_id: str) -> dict:
    return loans.get_schedule(bank(), current_user(), loan_id)


@blp.post("/loans/<loan_id>/reject")
@blp.doc(security=BEARER, description="Staff. 409 `loan_not_applied` unless the loan is applied.")
@jwt_required()
@staff_required
@blp.arguments(LoanRejectIn)
@blp.response(200, LoanOut)
def reject_loan(body: dict, loan_id: str) -> dict:
    return loans.reject_loan(bank(), current_user(), loan_id, body["reason"])


APPROVE_DOC = """Staff. A job (202 + Location, Idempotency-Key required) on the transfers queue: the worker opens the
loan's own account in the ledger (`ledger_account_id`, internal), posts one balanced transfer of kind `disbursement`
from it to the borrower's account, so that account holds minus the principal owed from then on, writes the schedule
and makes the loan `active` (exactly once, however often the message is delivered); the job's result names the
transfer and the loan's account.
409 `loan_not_applied` unless the loan is applied. If the receiving account is frozen or closed by then, the job
fails (`account_frozen` / `account_closed`) and the loan is back to `applied` with that `failure_code`."""


@blp.post("/loans/<loan_id>/approve")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER], description=APPROVE_DOC)
@jwt_required()
@staff_required
@idempotency_required
@blp.response(202, JobOut)
def approve_loan(loan_id: str):  # type: ignore[no-untyped-def]
    accepted = loans.approve_loan(bank(), current_user(), loan_id, idempotency_key=idempotency_key(), body=raw_body())
    return job_response(accepted)


REPAY_DOC = """The borrower repays early, in part or in full. A job (202 + Location, Idempotency-Key required) on the
transfers queue: the worker brings interest up to today, moves the amount from the loan's `account_id` into the
loan's own account (interest accrued to date first, then principal) and recomputes the unpaid instalments as a new
annuity over the same due dates; a repayment of the whole payoff makes the loan `repaid`. 422 when `amount` is not a
positive amount of the loan's currency or is more than the payoff today (`amount_exceeds_payoff`); 409 `loan_overdue`
while an instalment is overdue (it is collected first), `loan_not_active` unless the loan is active; 403 for staff
(only the borrower repays); 404 for anyone else. The job fails `insufficient_funds` (nothing is taken) when the
account does not hold the amount; its result names the amount repaid and what is outstanding."""


@blp.post("/loans/<loan_id>/repay")
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER], description=REPAY_DOC)
@jwt_required()
@idempotency_required
@blp.arguments(LoanRepayIn)
@blp.response(202, JobOut)
def repay_loan(body: dict, loan_id: str):  # type: ignore[no-untyped-def]
    accepted = loans.request_repayment(bank(), current_user(), loan_id, amount=body["amount"],
                                       idempotency_key=idempotency_key(), body=raw_body())
    return job_response(accepted)
