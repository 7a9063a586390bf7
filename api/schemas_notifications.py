"""Request and response shapes of the notifications API."""

from __future__ import annotations

from marshmallow import Schema, fields

from api.schemas import PageArgs


class NotificationListArgs(PageArgs):
    pass


class AttachmentOut(Schema):
    filename = fields.String()
    content_type = fields.String(metadata={"example": "application/pdf"})
    size = fields.Integer(metadata={"description": "Bytes."})


class NotificationOut(Schema):
    id = fields.String()
    channel = fields.String(metadata={"enum": ["email", "sms", "in_app"]})
    template = fields.String()
    subject = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": ["queued", "sent", "failed"]})
    created_at = fields.String()
    sent_at = fields.String(allow_none=True)
    attachment = fields.Nested(
        AttachmentOut,
        allow_none=True,
        metadata={"description": "The file the email carries (the monthly statement's PDF); null for most messages, "
                  "and always for SMS and in-app ones."},
    )


class NotificationPage(Schema):
    items = fields.List(fields.Nested(NotificationOut))
    next_cursor = fields.String(allow_none=True)
