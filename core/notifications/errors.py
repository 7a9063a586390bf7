"""How a delivery attempt can fail: worth retrying later, or never going to work."""

from __future__ import annotations

from core.errors import TransientError


class DeliveryFailed(Exception):
    """The receiver refused the message for good (SMTP 5xx, provider 4xx): not retried."""


class DeliveryDeferred(TransientError):
    """The receiver could not take the message now (SMTP 4xx, provider 5xx, no connection, a timeout)."""


class RetryLater(TransientError):
    """Raised by send_notification after a deferred attempt was recorded; the task retries in `retry_in` seconds."""

    def __init__(self, message: str, *, retry_in: int) -> None:
        super().__init__(message)
        self.retry_in = retry_in
