"""Request and response shapes of webhooks and their deliveries."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas import PageArgs, Strict
from core.webhooks import EVENT_TYPES
from core.webhooks.addresses import MAX_URL
from core.webhooks.endpoints import MAX_DESCRIPTION

URL = fields.String(
    validate=validate.Length(min=1, max=MAX_URL),
    metadata={"description": "An http or https URL (else 422 invalid_url). Loopback, private, link-local and "
                             "metadata addresses are refused: here when the host is a literal address, at each "
                             "delivery after resolving the name."},
)
EVENTS = fields.List(
    fields.String(validate=validate.OneOf(EVENT_TYPES)),
    validate=validate.Length(min=1, max=len(EVENT_TYPES) * 4),
    metadata={"description": "Event types to receive. `kyc.decided` is a KYC job reaching a terminal status "
                             "(its result.status says verified, needs_review or rejected)."},
)
DESCRIPTION = fields.String(allow_none=True, validate=validate.Length(max=MAX_DESCRIPTION))
STATUSES = ["active", "disabled"]


class WebhookIn(Strict):
    url = fields.String(required=True, validate=URL.validate, metadata=URL.metadata)
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True,
                         validate=EVENTS.validate, metadata=EVENTS.metadata)
    description = fields.String(allow_none=True, load_default=None, validate=DESCRIPTION.validate)


class WebhookPatch(Strict):
    url = fields.String(validate=URL.validate, metadata=URL.metadata)
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), validate=EVENTS.validate,
                         metadata=EVENTS.metadata)
    description = fields.String(allow_none=True, validate=DESCRIPTION.validate)
    status = fields.String(validate=validate.OneOf(STATUSES),
                           metadata={"description": "disabled stops deliveries (waiting retries stop too); active "
                                                    "starts them again."})


class WebhookOut(Schema):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String(metadata={"enum": list(EVENT_TYPES)}))
    description = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": STATUSES})
    disabled_reason = fields.String(allow_none=True, metadata={"description": "Why bankq or the owner disabled it."})
    created_at = fields.String(metadata={"description": "RFC 3339 UTC."})
    updated_at = fields.String(metadata={"description": "RFC 3339 UTC."})


class WebhookWithSecret(WebhookOut):
    secret = fields.String(metadata={"description": "`whsec_` + base64 of the HMAC-SHA256 key. Shown only when the "
                                                    "webhook is created and when the secret is rotated."})


class WebhookPage(Schema):
    items = fields.List(fields.Nested(WebhookOut))
    next_cursor = fields.String(allow_none=True)


class WebhookListArgs(PageArgs):
    pass


class AttemptOut(Schema):
    id = fields.String(metadata={"description": "The attempt's id: what .../deliveries/{delivery_id}/redeliver "
                                               "takes."})
    event_id = fields.String(metadata={"description": "The job event (the id GET /api/v1/events shows)."})
    webhook_id = fields.String()
    type = fields.String(metadata={"enum": list(EVENT_TYPES)})
    attempt = fields.Integer(metadata={"description": "1 for the first try of this delivery."})
    status_code = fields.Integer(allow_none=True, metadata={"description": "null when no answer came."})
    error = fields.String(allow_none=True, metadata={"description": "Why the attempt failed; null on success."})
    duration_ms = fields.Integer()
    at = fields.String(metadata={"description": "RFC 3339 UTC."})


class AttemptPage(Schema):
    items = fields.List(fields.Nested(AttemptOut))
    next_cursor = fields.String(allow_none=True)


class RedeliveryOut(Schema):
    attempt_id = fields.String()
    event_id = fields.String()
    webhook_id = fields.String()
    type = fields.String(metadata={"enum": list(EVENT_TYPES)})
    status = fields.String(metadata={"enum": ["pending", "sending"],
                                     "description": "pending: sent again within seconds; sending: already on its way."})
