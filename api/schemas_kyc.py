"""Request and response shapes for KYC documents and reviews."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import RAISE, Schema, fields, validate


class Strict(Schema):
    class Meta:
        unknown = RAISE


class DocumentForm(Strict):
    document_type = fields.String(required=True, validate=validate.OneOf(["passport", "id_card"]))


class DocumentFile(Strict):
    file = Upload(required=True, metadata={"description": "PNG or JPEG, at most 10 MB and 40 megapixels."})


class Extracted(Schema):
    surname = fields.String(allow_none=True)
    given_names = fields.String(allow_none=True)
    document_number = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)
    issuing_country = fields.String(allow_none=True)
    birth_date = fields.String(allow_none=True)
    sex = fields.String(allow_none=True)
    expiry_date = fields.String(allow_none=True)


class Checks(Schema):
    mrz_valid = fields.Boolean(allow_none=True)
    not_expired = fields.Boolean(allow_none=True)
    name_match = fields.Boolean(allow_none=True)
    birth_date_match = fields.Boolean(allow_none=True)


class DocumentOut(Schema):
    id = fields.String()
    job_id = fields.String()
    user_id = fields.String()
    status = fields.String(metadata={"enum": ["processing", "verified", "needs_review", "rejected"]})
    document_type = fields.String()
    extracted = fields.Nested(Extracted, allow_none=True)
    checks = fields.Nested(Checks, allow_none=True)
    reasons = fields.List(fields.String())
    review_reason = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class DocumentPage(Schema):
    items = fields.List(fields.Nested(DocumentOut))
    next_cursor = fields.String(allow_none=True)


class ReviewIn(Strict):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
