"""Request and response shapes of loan products, loans and their schedules."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas import CURRENCY, ID, PageArgs, Strict
from core.loans.applications import STATUSES
from core.loans.products import MAX_TERM_MONTHS

TERM = {"strict": True, "validate": validate.Range(min=1, max=MAX_TERM_MONTHS)}


def _money(description: str, example: str, required: bool = True) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Length(min=1, max=40),
        metadata={"description": f"{description} Decimal string in major units.", "example": example},
    )


class LoanProductIn(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    currency = fields.String(required=True, validate=CURRENCY)
    annual_rate = fields.String(
        required=True,
        validate=validate.Length(min=1, max=8),
        metadata={"description": 'Yearly rate as a fraction, "0" to "1", at most 6 decimals.', "example": "0.0799"},
    )
    min_amount = _money("Smallest principal.", "500.00")
    max_amount = _money("Largest principal.", "25000.00")
    min_term_months = fields.Integer(required=True, **TERM)
    max_term_months = fields.Integer(required=True, **TERM)
    late_fee = _money('Fee per missed instalment ("0" for none).', "15.00")


class LoanProductOut(Schema):
    id = fields.String()
    name = fields.String()
    currency = fields.String()
    annual_rate = fields.String(metadata={"example": "0.0799"})
    min_amount = fields.String()
    max_amount = fields.String()
    min_term_months = fields.Integer()
    max_term_months = fields.Integer()
    late_fee = fields.String()
    created_at = fields.String()


class LoanProductPage(Schema):
    items = fields.List(fields.Nested(LoanProductOut))
    next_cursor = fields.String(allow_none=True)


class LoanIn(Strict):
    product_id = fields.String(required=True, **ID)
    amount = _money("The principal, within the product's range.", "5000.00")
    term_months = fields.Integer(required=True, **TERM)
    account_id = fields.String(
        required=True,
        metadata={"description": "Your active account in the product's currency: receives the money."},
        **ID,
    )


class LoanRejectIn(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class LoanRepayIn(Strict):
    amount = _money("How much to repay now: interest accrued to date is paid first, then principal. At most the "
                    "payoff (principal outstanding and interest to date).", "250.00")


class LoanListArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


class LoanOut(Schema):
    id = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    product_id = fields.String()
    user_id = fields.String(metadata={"description": "The borrower."})
    account_id = fields.String()
    currency = fields.String()
    principal = fields.String()
    outstanding = fields.String(
        metadata={
            "description": "Principal still owed: 0 until disbursed, then minus the balance of the loan's own "
            "account in the ledger (`ledger_account_id`), which always equals the principal of the unpaid "
            "instalments. Interest accrued and late fees are owed on top of it (see the schedule)."
        }
    )
    annual_rate = fields.String(metadata={"description": "Copied from the product when applying."})
    term_months = fields.Integer()
    reason = fields.String(allow_none=True, metadata={"description": "Why it was rejected."})
    failure_code = fields.String(
        allow_none=True, metadata={"description": "Why the last disbursement failed (the loan is back to applied)."}
    )
    job_id = fields.String(allow_none=True, metadata={"description": "The disbursement job, once approved."})
    disbursement_transfer_id = fields.String(
        allow_none=True,
        metadata={"description": "The posting that paid the loan out: from its own account to `account_id`."},
    )
    ledger_account_id = fields.String(
        allow_none=True,
        metadata={
            "description": "The loan's own account in the ledger (internal, opened with the disbursement): its balance "
            "is minus the principal owed, so the admin ledger check accounts for every loan. Null until disbursed."
        },
    )
    ledger_account_number = fields.String(allow_none=True, metadata={"example": "BANKQ-LOAN-3F2B9C4E1D7A4B6C8E0F"})
    disbursed_on = fields.String(allow_none=True, metadata={"description": "UTC date; instalments count from it."})
    decided_at = fields.String(allow_none=True)
    created_at = fields.String()


class LoanPage(Schema):
    items = fields.List(fields.Nested(LoanOut))
    next_cursor = fields.String(allow_none=True)


class InstalmentOut(Schema):
    number = fields.Integer()
    due_date = fields.String(metadata={"description": "UTC date."})
    payment = fields.String()
    principal = fields.String()
    interest = fields.String()
    late_fee = fields.String(metadata={"description": "Charged once when the instalment is still unpaid after the "
                                                      "grace period; collected with it."})
    status = fields.String(metadata={"enum": ["due", "paid", "overdue"]})


class ScheduleOut(Schema):
    items = fields.List(fields.Nested(InstalmentOut))
