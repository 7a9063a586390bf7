"""Request and response shapes for statements (reports)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas import Strict
from core.reports.statements import FORMATS, MAX_DAYS


class StatementIn(Strict):
    period_from = fields.Date(
        required=True, data_key="from", metadata={"description": "First UTC day of the period (inclusive)."}
    )
    period_to = fields.Date(
        required=True,
        data_key="to",
        metadata={
            "description": f"Last UTC day (inclusive): not before `from`, at most {MAX_DAYS} days in all, "
            "not after today."
        },
    )
    format = fields.String(required=True, validate=validate.OneOf(list(FORMATS)))


class ReportSummary(Schema):
    currency = fields.String()
    entries = fields.Integer()
    opening_balance = fields.String()
    total_in = fields.String()
    total_out = fields.String()
    closing_balance = fields.String(metadata={"description": "opening_balance + total_in - total_out."})


class ReportOut(Schema):
    id = fields.String()
    status = fields.String(metadata={"enum": ["processing", "ready", "failed"]})
    format = fields.String(metadata={"enum": list(FORMATS)})
    account_id = fields.String()
    period_from = fields.String(data_key="from", attribute="from")
    period_to = fields.String(data_key="to", attribute="to")
    created_at = fields.String()
    ready_at = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True, metadata={"description": "Bytes, once ready."})
    sha256 = fields.String(allow_none=True, metadata={"description": "Hex SHA-256 of the file, once ready."})
    job_id = fields.String()
    summary = fields.Nested(ReportSummary, allow_none=True, metadata={"description": "Totals, once ready."})
