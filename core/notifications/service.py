"""Notifications as an outbox of side effects: queued in the caller's transaction, claimed, sent, recorded.

Delivery guarantee. Every notification has a `message_id` fixed when it is queued (`<id@bankq>`); it is the
email's Message-ID header and the SMS provider's `id`. A send is recorded before (the claim: queued -> sending,
under a lease) and after (sent, failed, or queued again with a back-off):

- Duplicate task deliveries running together are no-ops: only one of them wins the claim.
- A worker that dies after the receiver accepted the message but before "sent" was recorded leaves the row
  `sending`; once its lease (LEASE) expires the message is sent again, with the same Message-ID / id.
So receivers that deduplicate on the id (mail stores and providers honouring Message-ID / idempotency ids) see at
most one message per notification; others see it at least once. Nothing is ever silently dropped: a message
ends `sent`, or `failed` with `last_error` (a permanent refusal, or MAX_ATTEMPTS deferrals).

The context may hold a one-time code. The body is rendered at send time and never stored; no log line or
stored error carries the context; once the notification is sent or failed its stored context loses "code".
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bank import Bank
from core.clock import as_utc, utcnow
from core.errors import ValidationFailed
from core.jobs import add_message
from core.models import Notification, OutboxMessage, User, new_id
from core.notifications.attachments import Attachment, check_attachment, read_attachment
from core.notifications.errors import DeliveryDeferred, DeliveryFailed, RetryLater
from core.notifications.mail import build_message, mailer_for
from core.notifications.sms import sms_provider_for
from core.notifications.templates import render_email, render_sms, template_for
from core.settings import Settings

log = logging.getLogger(__name__)
TASK_NAME, QUEUE = "notify.send", "notify"
CHANNELS = ("email", "sms", "in_app")
# A claimed notification untouched this long belongs to a dead worker; sending takes seconds (SMTP times out at 20).
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 15
MAX_BACKOFF_SECONDS = 600
SECRET_KEYS = ("code",)


@dataclass(frozen=True)
class Claim:
    id: str
    attempt: int
    channel: str
    template: str
    recipient: str
    message_id: str
    context: dict[str, Any]
    created_at: datetime
    attachment: Attachment | None = None


def backoff_seconds(attempt: int) -> int:
    """5 s, 10 s, 20 s, ... capped at ten minutes."""
    return int(min(MAX_BACKOFF_SECONDS, 5 * 2 ** max(0, min(attempt, 20) - 1)))


def queue_notification(
    session: Session,
    *,
    user: User,
    channel: str,
    template: str,
    context: dict[str, Any],
    recipient: str | None = None,
    notification_id: str | None = None,
    attachment: Attachment | None = None,
) -> Notification:
    """Add the notification and its outbox message to the caller's transaction: it exists iff that commits.
    A caller that must send a message at most once (e.g. once per period) passes a deterministic id: the primary
    key then refuses the second one. An email may carry one file (core.notifications.attachments)."""
    if channel not in CHANNELS:
        raise ValidationFailed(
            "Unknown notification channel.",
            code="unknown_channel",
            errors={"channel": [f"Must be one of {', '.join(CHANNELS)}."]},
        )
    spec = template_for(template, context)
    if attachment is not None:
        check_attachment(channel, attachment)
    to = recipient or _default_recipient(user, channel)
    notification_id = notification_id or new_id()
    now = utcnow()
    notification = Notification(
        id=notification_id,
        user_id=user.id,
        channel=channel,
        template=template,
        subject=spec.subject,
        recipient=to,
        context=json.loads(json.dumps(context, default=str)),  # what JSON can hold, as the worker will read it
        attachment=attachment.as_json() if attachment is not None else None,
        status="queued",
        attempts=0,
        message_id=f"<{notification_id}@bankq>",
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
    )
    session.add(notification)
    add_message(session, TASK_NAME, QUEUE, notification_id)
    return notification


def _default_recipient(user: User, channel: str) -> str:
    if channel == "email":
        return user.email
    if channel == "sms":
        if not user.phone:
            raise ValidationFailed(
                "No phone number on file.",
                code="no_phone",
                errors={"channel": ["The user has no phone number for SMS."]},
            )
        return user.phone
    return f"user:{user.id}"


def send_notification(bank: Bank, notification_id: str) -> str | None:
    """The worker's call: claim, render and send outside any transaction, record. Returns "sent" or "failed",
    None when there was nothing to do (a duplicate delivery, another worker's lease); raises RetryLater when the
    receiver deferred and the attempt was recorded."""
    taken = claim(bank, notification_id)
    if taken is None:
        return None
    if _code_expired(taken.context, taken.created_at, utcnow()):
        return record_failed(bank, taken, "The code expired before it could be sent.")
    try:
        deliver(bank.settings, taken)
    except DeliveryFailed as exc:
        return record_failed(bank, taken, _redact(str(exc), taken.context))
    except DeliveryDeferred as exc:
        return record_deferred(bank, taken, _redact(str(exc), taken.context))
    except Exception as exc:  # an unforeseen error: retried like a deferral, bounded by MAX_ATTEMPTS
        return record_deferred(bank, taken, _redact(f"{type(exc).__name__}: {exc}", taken.context))
    return record_sent(bank, taken)


def claim(bank: Bank, notification_id: str) -> Claim | None:
    """queued -> sending under a lease, in a short transaction of its own (sending can take seconds)."""
    if not isinstance(notification_id, str) or len(notification_id) > 36:
        return None
    now = utcnow()
    with bank.db.transaction() as s:
        n = s.get(Notification, notification_id, with_for_update=True)
        if n is None or n.status in ("sent", "failed"):
            return None
        if n.status == "sending" and as_utc(n.next_attempt_at) > now:
            return None  # another worker holds it
        n.status, n.attempts, n.next_attempt_at, n.updated_at = "sending", n.attempts + 1, now + LEASE, now
        return Claim(
            n.id, n.attempts, n.channel, n.template, n.recipient, n.message_id, dict(n.context or {}), n.created_at,
            Attachment.from_json(n.attachment) if n.attachment else None,
        )


def deliver(settings: Settings, taken: Claim) -> None:
    """Render from the context and hand the message to its channel. The rendered body lives only here."""
    try:
        if taken.channel == "email":
            rendered = render_email(taken.template, taken.context)
            files = [(taken.attachment, read_attachment(taken.attachment, settings))] if taken.attachment else []
            message = build_message(
                settings,
                rendered=rendered,
                recipient=taken.recipient,
                message_id=taken.message_id,
                template=taken.template,
                attachments=files,
            )
            mailer_for(settings).send(message, taken.recipient)
        elif taken.channel == "sms":
            rendered = render_sms(taken.template, taken.context)
            sms_provider_for(settings).send(to=taken.recipient, text=rendered.text, message_id=taken.message_id)
        # in_app: the row is the message; nothing leaves the bank
    except (TemplateError, ValidationFailed) as exc:
        raise DeliveryFailed(f"The message could not be rendered: {type(exc).__name__}") from None


def record_sent(bank: Bank, taken: Claim) -> str | None:
    """Whoever's attempt it was, the receiver has the message now: record it, unless already recorded."""
    now = utcnow()
    with bank.db.transaction() as s:
        n = s.get(Notification, taken.id, with_for_update=True)
        if n is None:
            return None
        if n.status != "sent":
            _finish(n, "sent", now, None)
            n.sent_at = now
    log.debug("notification %s (%s, %s) sent", taken.message_id, taken.channel, taken.template)
    return "sent"


def record_failed(bank: Bank, taken: Claim, error: str) -> str | None:
    with bank.db.transaction() as s:
        n = s.get(Notification, taken.id, with_for_update=True)
        if n is None or n.status != "sending" or n.attempts != taken.attempt:
            return None  # someone else's attempt now
        _finish(n, "failed", utcnow(), error)
    log.error("notification %s (%s, %s) failed: %s", taken.message_id, taken.channel, taken.template, error)
    return "failed"


def record_deferred(bank: Bank, taken: Claim, error: str) -> str | None:
    """Back to queued with a back-off (raising RetryLater), or failed once MAX_ATTEMPTS were spent."""
    now = utcnow()
    with bank.db.transaction() as s:
        n = s.get(Notification, taken.id, with_for_update=True)
        if n is None or n.status != "sending" or n.attempts != taken.attempt:
            return None
        if n.attempts >= MAX_ATTEMPTS:
            _finish(n, "failed", now, f"Gave up after {n.attempts} attempts. {error}")
            gave_up = True
        else:
            retry_in = backoff_seconds(n.attempts)
            n.status, n.last_error, n.updated_at = "queued", error[:2000], now
            n.next_attempt_at = now + timedelta(seconds=retry_in)
            gave_up = False
    if gave_up:
        log.error(
            "notification %s (%s, %s) failed after %d attempts: %s",
            taken.message_id,
            taken.channel,
            taken.template,
            taken.attempt,
            error,
        )
        return "failed"
    log.warning(
        "notification %s (%s, %s) deferred, retry in %ds: %s",
        taken.message_id,
        taken.channel,
        taken.template,
        retry_in,
        error,
    )
    raise RetryLater(f"notification {taken.id} deferred: {error}", retry_in=retry_in)


def _finish(n: Notification, status: str, now: datetime, error: str | None) -> None:
    n.status, n.updated_at, n.last_error = status, now, error[:2000] if error else None
    n.context = {k: v for k, v in (n.context or {}).items() if k not in SECRET_KEYS}


def _code_expired(context: dict[str, Any], created_at: datetime, now: datetime) -> bool:
    minutes = context.get("expires_minutes")
    if "code" not in context or not isinstance(minutes, int | float) or isinstance(minutes, bool):
        return False
    return as_utc(created_at) + timedelta(minutes=minutes) <= now


def _redact(text: str, context: dict[str, Any]) -> str:
    for key in SECRET_KEYS:
        secret = context.get(key)
        if secret not in (None, ""):
            text = text.replace(str(secret), "[redacted]")
    return text


def redrive_stuck(bank: Bank, *, limit: int = 500) -> int:
    """Give an outbox message again to notifications whose message was lost: queued ones due for a while
    (redrive_after_seconds past next_attempt_at) and sending ones whose lease expired. A duplicate is harmless:
    the claim lets one delivery through."""
    now = utcnow()
    grace = timedelta(seconds=bank.settings.redrive_after_seconds)
    in_outbox = select(OutboxMessage.job_id).where(OutboxMessage.task_name == TASK_NAME)
    with bank.db.transaction() as s:
        stuck = list(
            s.scalars(
                select(Notification)
                .where(
                    ((Notification.status == "queued") & (Notification.next_attempt_at <= now - grace))
                    | ((Notification.status == "sending") & (Notification.next_attempt_at <= now)),
                    Notification.id.not_in(in_outbox),
                )
                .order_by(Notification.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for n in stuck:
            n.status, n.next_attempt_at, n.updated_at = "queued", now + grace, now
            add_message(s, TASK_NAME, QUEUE, n.id)
    if stuck:
        log.warning("re-driving %d notification(s)", len(stuck))
    return len(stuck)
