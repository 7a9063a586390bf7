"""Request and response shapes for staff customer management."""

from __future__ import annotations

from marshmallow import fields, validate

from api.schemas import CURRENCY, PHONE, TIME_ZONE, USERNAME, AccountOut, PageArgs, Strict, UserOut


class CustomerSearchArgs(PageArgs):
    q = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "Part of the name, email, phone or username (any case), or an account number."},
    )


class CustomerPage(Strict):
    items = fields.List(fields.Nested(UserOut))
    next_cursor = fields.String(allow_none=True)


class CustomerOut(UserOut):
    accounts = fields.List(fields.Nested(AccountOut))


class CustomerPatchIn(Strict):
    full_name = fields.String(validate=validate.Length(min=1, max=200))
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.String(allow_none=True, validate=PHONE, metadata={"description": "null removes the number."})
    date_of_birth = fields.Date(allow_none=True)
    time_zone = fields.String(**TIME_ZONE)


class WalkInIn(Strict):
    username = fields.String(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    full_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    date_of_birth = fields.Date(allow_none=True)
    phone = fields.String(allow_none=True, validate=PHONE)


class CustomerStatusIn(Strict):
    status = fields.String(required=True, validate=validate.OneOf(["active", "suspended", "closed"]))


LIMIT_DOC = "Decimal string in major units with at most the currency's minor digits (like amounts), or null: the "\
    "bank's default (BANKQ_DAILY_LIMIT / BANKQ_MONTHLY_LIMIT; none if unset)."


class LimitsIn(Strict):
    currency = fields.String(required=True, validate=CURRENCY)
    daily = fields.String(
        required=True, allow_none=True, validate=validate.Length(min=1, max=40),
        metadata={"description": f"Per UTC day. {LIMIT_DOC}", "example": "2000.00"},
    )
    monthly = fields.String(
        required=True, allow_none=True, validate=validate.Length(min=1, max=40),
        metadata={"description": f"Per calendar month (UTC); at least `daily`. {LIMIT_DOC}", "example": "10000.00"},
    )
