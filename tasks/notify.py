"""Sending notifications (queue `notify`). Retries follow the back-off core recorded on the notification."""

from __future__ import annotations

import logging

from core import notifications
from core.errors import DependencyUnavailable, TransientError
from tasks import celery
from tasks.runtime import bank

log = logging.getLogger(__name__)


@celery.task(name="notify.send", bind=True, max_retries=notifications.MAX_ATTEMPTS + 5, soft_time_limit=60,
             time_limit=90)
def send(self, notification_id: str) -> str | None:  # type: ignore[no-untyped-def]
    try:
        status = notifications.send_notification(bank(), notification_id)
    except (TransientError, DependencyUnavailable) as exc:
        countdown = getattr(exc, "retry_in", None) or min(60, 5 * 2**self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from None
    if status == "failed":
        log.error("notification %s failed for good; see its last_error", notification_id)
    return status
