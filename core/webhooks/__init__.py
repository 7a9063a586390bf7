"""Webhooks (Standard Webhooks): customers' endpoints, fan-out of job events into deliveries, and sending them.

endpoints: the customer's resource. fan_out: job_events -> delivery rows. deliveries: claim, attempt, record,
retry. addresses and transport: where a request may go and how it is made. secrets: making, sealing, signing."""

from core.webhooks.deliveries import (
    MAX_ATTEMPTS,
    MAX_IN_FLIGHT,
    RETRY_DELAYS,
    Claim,
    Outcome,
    claim_due,
    delivery_figures,
    list_attempts,
    redeliver,
    send_delivery,
)
from core.webhooks.endpoints import (
    EVENT_TYPES,
    NewWebhook,
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhooks,
    rotate_secret,
    update_webhook,
)
from core.webhooks.fan_out import event_types, fan_out

__all__ = [
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "MAX_IN_FLIGHT",
    "RETRY_DELAYS",
    "Claim",
    "NewWebhook",
    "Outcome",
    "claim_due",
    "create_webhook",
    "delete_webhook",
    "delivery_figures",
    "event_types",
    "fan_out",
    "get_webhook",
    "list_attempts",
    "list_webhooks",
    "redeliver",
    "rotate_secret",
    "send_delivery",
    "update_webhook",
]
