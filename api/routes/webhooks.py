"""Customers' webhook endpoints (Standard Webhooks) and their delivery attempts."""

from __future__ import annotations

from flask_jwt_extended import jwt_required

from api.blueprint import Blueprint
from api.schemas_webhooks import (
    AttemptPage,
    RedeliveryOut,
    WebhookIn,
    WebhookListArgs,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
    WebhookWithSecret,
)
from api.security import bank, current_user
from core import webhooks

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks", description="Webhooks")
BEARER = [{"bearerAuth": []}]
SIGNING = (
    "Each delivery is a POST of `{type, timestamp, data: <the job>}` with the headers `webhook-id` (the same on "
    "every retry), `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>`, Standard Webhooks). "
    "Retries: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; a 2xx within 15 s is success, redirects are "
    "failures, 410 disables the endpoint, and so do 5 days of failures."
)


@blp.post("")
@blp.doc(security=BEARER, description=f"The answer holds the signing secret, shown only here. {SIGNING}")
@jwt_required()
@blp.arguments(WebhookIn)
@blp.response(201, WebhookWithSecret)
def create_webhook(body: dict) -> tuple[dict, int]:
    return webhooks.create_webhook(bank(), current_user(), webhooks.NewWebhook(**body)), 201


@blp.get("")
@blp.doc(security=BEARER, description="The caller's webhooks, newest first.")
@jwt_required()
@blp.arguments(WebhookListArgs, location="query")
@blp.response(200, WebhookPage)
def list_webhooks(args: dict) -> dict:
    return webhooks.list_webhooks(bank(), current_user(), limit=args["limit"], cursor=args["cursor"])


@blp.get("/<webhook_id>")
@blp.doc(security=BEARER, description="Another user's webhook is 404.")
@jwt_required()
@blp.response(200, WebhookOut)
def get_webhook(webhook_id: str) -> dict:
    return webhooks.get_webhook(bank(), current_user(), webhook_id)


@blp.patch("/<webhook_id>")
@blp.doc(security=BEARER, description="Change the URL, events, description or status.")
@jwt_required()
@blp.arguments(WebhookPatch)
@blp.response(200, WebhookOut)
def update_webhook(body: dict, webhook_id: str) -> dict:
    return webhooks.update_webhook(bank(), current_user(), webhook_id, body)


@blp.delete("/<webhook_id>")
@blp.doc(security=BEARER, description="Nothing more is sent to it.")
@jwt_required()
@blp.response(204)
def delete_webhook(webhook_id: str) -> tuple[str, int]:
    webhooks.delete_webhook(bank(), current_user(), webhook_id)
    return "", 204


@blp.post("/<webhook_id>/rotate-secret")
@blp.doc(security=BEARER, description="A new secret, shown only here. For 24 h the previous one signs too: "
                                      "`webhook-signature` then carries two space-separated signatures.")
@jwt_required()
@blp.response(200, WebhookWithSecret)
def rotate_secret(webhook_id: str) -> dict:
    return webhooks.rotate_secret(bank(), current_user(), webhook_id)


@blp.get("/<webhook_id>/deliveries")
@blp.doc(security=BEARER, description="Every delivery attempt to this endpoint, newest first.")
@jwt_required()
@blp.arguments(WebhookListArgs, location="query")
@blp.response(200, AttemptPage)
def list_deliveries(args: dict, webhook_id: str) -> dict:
    return webhooks.list_attempts(bank(), current_user(), webhook_id, limit=args["limit"], cursor=args["cursor"])


@blp.post("/<webhook_id>/deliveries/<delivery_id>/redeliver")
@blp.doc(security=BEARER, description="`delivery_id` is an attempt's `id` from the delivery list: that attempt's "
                                      "event is sent once more, with the same `webhook-id`. 409 webhook_disabled "
                                      "while the endpoint is disabled.")
@jwt_required()
@blp.response(202, RedeliveryOut)
def redeliver(webhook_id: str, delivery_id: str) -> tuple[dict, int]:
    return webhooks.redeliver(bank(), current_user(), webhook_id, delivery_id), 202
