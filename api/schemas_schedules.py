"""Request and response shapes of reminders and standing orders."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas import AMOUNT, CURRENCY, ID, PageArgs, Strict, _utc_representable

CHANNELS = ["email", "sms", "in_app"]
FREQUENCIES = ["daily", "weekly", "monthly"]
UTC_DATE = "A UTC date (YYYY-MM-DD): an occurrence is due from 00:00 UTC of its date, whatever the customer's zone."


def _local(of: str) -> fields.String:
    return fields.String(
        allow_none=True,
        metadata={
            "description": f"`{of}` in the customer's `time_zone`: ISO 8601 with that zone's offset then "
            "(for display; the UTC field is the truth)."
        },
    )


def _time_zone() -> fields.String:
    return fields.String(metadata={"description": "The customer's IANA time zone used for the *_local fields."})


class ReminderIn(Strict):
    message = fields.String(required=True, validate=validate.Length(min=1, max=500))
    remind_at = fields.AwareDateTime(
        required=True,
        default_timezone=UTC,
        validate=_utc_representable,
        metadata={"description": "RFC 3339; in the future and at most two years ahead."},
    )
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    repeat = fields.String(load_default="none", validate=validate.OneOf(["none", *FREQUENCIES]))


class ReminderOut(Schema):
    id = fields.String()
    message = fields.String()
    remind_at = fields.String(metadata={"description": "RFC 3339 UTC."})
    remind_at_local = _local("remind_at")
    channel = fields.String(metadata={"enum": CHANNELS})
    repeat = fields.String(metadata={"enum": ["none", *FREQUENCIES]})
    status = fields.String(metadata={"enum": ["active", "done", "cancelled"]})
    next_at = fields.String(allow_none=True, metadata={"description": "RFC 3339 UTC."})
    next_at_local = _local("next_at")
    time_zone = _time_zone()
    created_at = fields.String()


class ReminderPage(Schema):
    items = fields.List(fields.Nested(ReminderOut))
    next_cursor = fields.String(allow_none=True)


class ReminderListArgs(PageArgs):
    pass


class StandingOrderIn(Strict):
    source_account_id = fields.String(required=True, **ID)
    destination_account_id = fields.String(**ID)
    destination_account_number = fields.String(validate=validate.Length(min=1, max=34), metadata={
        "description": "The payee's account number, instead of destination_account_id (exactly one of the two)."})
    amount = AMOUNT
    currency = fields.String(required=True, validate=CURRENCY)
    frequency = fields.String(required=True, validate=validate.OneOf(FREQUENCIES))
    start_date = fields.Date(
        required=True, metadata={"description": f"The first payment: today (UTC) or later. {UTC_DATE}"}
    )
    end_date = fields.Date(
        allow_none=True, load_default=None, metadata={"description": f"The last possible payment. {UTC_DATE}"}
    )
    description = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))

    @validates_schema
    def _one_destination(self, data: dict, **_: object) -> None:
        if bool(data.get("destination_account_id")) == bool(data.get("destination_account_number")):
            raise ValidationError("Give exactly one of destination_account_id and destination_account_number.",
                                  "destination_account_id")


class OccurrenceOut(Schema):
    date = fields.String(metadata={"description": UTC_DATE})
    status = fields.String(metadata={"enum": ["requested", "posted", "failed", "cancelled", "skipped"]})
    job_id = fields.String(allow_none=True)
    transfer_id = fields.String(allow_none=True)
    failure_code = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class StandingOrderOut(Schema):
    id = fields.String()
    source_account_id = fields.String()
    destination_account_id = fields.String()
    amount = fields.String()
    currency = fields.String()
    description = fields.String(allow_none=True)
    frequency = fields.String(metadata={"enum": FREQUENCIES})
    start_date = fields.String(metadata={"description": UTC_DATE})
    end_date = fields.String(allow_none=True, metadata={"description": UTC_DATE})
    status = fields.String(metadata={"enum": ["active", "ended", "cancelled"]})
    next_date = fields.String(allow_none=True, metadata={"description": UTC_DATE})
    created_at = fields.String(metadata={"description": "RFC 3339 UTC."})
    created_at_local = _local("created_at")
    time_zone = _time_zone()


class StandingOrderDetail(StandingOrderOut):
    occurrences = fields.List(fields.Nested(OccurrenceOut), metadata={"description": "The latest, newest first."})


class StandingOrderPage(Schema):
    items = fields.List(fields.Nested(StandingOrderOut))
    next_cursor = fields.String(allow_none=True)


class StandingOrderListArgs(PageArgs):
    pass
