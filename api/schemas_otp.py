"""Request and response shapes of one-time codes and password reset. Codes only ever come in, never go out."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas import Strict

CODE = fields.String(
    required=True,
    load_only=True,
    validate=validate.Regexp(r"^[0-9]{6}$", error="Six digits."),
    metadata={"example": "123456"},
)


class OtpIn(Strict):
    purpose = fields.String(
        required=True,
        validate=validate.OneOf(["transfer", "login", "password_reset", "verify_email", "verify_phone"]),
    )
    channel = fields.String(required=True, validate=validate.OneOf(["email", "sms"]))


class OtpVerifyIn(Strict):
    code = CODE


class VerifiedOut(Schema):
    verified = fields.Boolean(required=True)


class PasswordResetIn(Strict):
    email = fields.Email(required=True, validate=validate.Length(max=254))


class PasswordResetConfirmIn(Strict):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    code = CODE
    new_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class PasswordResetAccepted(Schema):
    detail = fields.String(required=True)
