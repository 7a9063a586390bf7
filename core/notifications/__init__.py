"""Messages to customers (email, SMS, in-app): queued with the caller's change, sent once per message id."""

from core.notifications.attachments import Attachment, fits
from core.notifications.errors import DeliveryDeferred, DeliveryFailed, RetryLater
from core.notifications.history import list_notifications
from core.notifications.service import (
    CHANNELS,
    LEASE,
    MAX_ATTEMPTS,
    QUEUE,
    TASK_NAME,
    queue_notification,
    redrive_stuck,
    send_notification,
)
from core.notifications.templates import TEMPLATES

__all__ = [
    "Attachment",
    "CHANNELS",
    "LEASE",
    "MAX_ATTEMPTS",
    "QUEUE",
    "TASK_NAME",
    "TEMPLATES",
    "fits",
    "DeliveryDeferred",
    "DeliveryFailed",
    "RetryLater",
    "list_notifications",
    "queue_notification",
    "redrive_stuck",
    "send_notification",
]
