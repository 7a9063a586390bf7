"""Sending deliveries: claim what is due, make one attempt, record it and schedule the next.

The schedule lives in the delivery row: attempt n is due RETRY_DELAYS[n - 1] after attempt n - 1 failed (the first
at once). A dispatch tick claims due deliveries with SKIP LOCKED, at most MAX_IN_FLIGHT per endpoint (counted under
the endpoint's row lock), so a slow or dead endpoint holds only its own deliveries back; an attempt's end claims the
endpoint's next due deliveries in the transaction that records it, so a busy endpoint's deliveries follow each other
without waiting for a tick. A claim is a token and a
lease: the worker that takes the token sends; a claim whose message or worker was lost is claimed again when its
lease runs out, so a broker loss delays a delivery, never drops it. webhook-id is the same on every attempt, so a
receiver can drop the duplicate a lost acknowledgement causes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from core import audit
from core.bank import Bank
from core.clock import as_utc, isoformat, utcnow
from core.errors import Conflict, NotFound
from core.models import User, Webhook, WebhookAttempt, WebhookDelivery, new_id
from core.notifications import queue_notification
from core.pagination import check_limit, decode_cursor, encode_cursor
from core.webhooks import transport
from core.webhooks.endpoints import disable, own_webhook, signing_secrets
from core.webhooks.secrets import SecretUnreadable, signature_header

# Seconds before attempt 1, 2, ...: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_DELAYS = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS)
MAX_IN_FLIGHT = 2
LEASE = timedelta(seconds=60)  # well above the 15 s an attempt may take
DISABLE_AFTER = timedelta(days=5)
USER_AGENT = "bankq-webhooks/1"


@dataclass(frozen=True)
class Claim:
    delivery_id: str
    token: str


@dataclass
class Outcome:
    status: str  # succeeded | retrying | failed | stale (another claim holds it, or nothing to do)
    answer: transport.Answer | None = None
    webhook_id: str | None = None
    claims: list[Claim] = field(default_factory=list)  # the endpoint's next deliveries, claimed as this one ended


@dataclass(frozen=True)
class _Taken:
    webhook_id: str
    attempt: int
    max_attempts: int
    message_id: str
    payload: str


def _due(now: Any) -> Any:
    return ((WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now)) | (
        (WebhookDelivery.status == "sending") & (WebhookDelivery.lease_until < now)
    )


def claim_due(bank: Bank, *, limit: int = 200) -> list[Claim]:
    """Claim due deliveries of active endpoints, at most MAX_IN_FLIGHT in flight per endpoint."""
    now = utcnow()
    due_hooks = select(WebhookDelivery.webhook_id).where(_due(now)).distinct()
    claims: list[Claim] = []
    with bank.db.transaction() as s:
        for hook_id in list(s.scalars(
            select(Webhook.id).where(Webhook.status == "active", Webhook.id.in_(due_hooks))
            .limit(limit).with_for_update(skip_locked=True)
        )):
            claims += _claim_for(s, hook_id, now)
    return claims


_DELIVERIES = cast(Table, WebhookDelivery.__table__)
# An endpoint's claim, built once with bound parameters (it runs after every attempt and for every endpoint in each
# dispatch round: building the statements and their cache keys on every call was a quarter of the webhooks
# process's CPU).
_IN_FLIGHT = select(func.count()).select_from(_DELIVERIES).where(
    _DELIVERIES.c.webhook_id == bindparam("of_webhook"), _DELIVERIES.c.status == "sending",
    _DELIVERIES.c.lease_until >= bindparam("at"))
_PICKED = (select(_DELIVERIES.c.id)
           .where(_DELIVERIES.c.webhook_id == bindparam("of_webhook"), _due(bindparam("at")))
           .order_by(_DELIVERIES.c.next_attempt_at, _DELIVERIES.c.event_id).limit(bindparam("room"))
           .with_for_update(skip_locked=True))
_CLAIM = (update(_DELIVERIES).where(_DELIVERIES.c.id.in_(_PICKED.scalar_subquery()))
          .values(status="sending", claim=bindparam("new_claim"), lease_until=bindparam("lease_ends"),
                  updated_at=bindparam("at"))
          .returning(_DELIVERIES.c.id))


# An attempt: its claim taken (the token must still be the one the message carries), what it is sent to, and then,
# under the endpoint's lock, the attempt recorded and the delivery moved on. Prebuilt like the claim.
_WEBHOOKS = cast(Table, Webhook.__table__)
_TAKE = (update(_DELIVERIES)
         .where(_DELIVERIES.c.id == bindparam("delivery"), _DELIVERIES.c.status == "sending",
                _DELIVERIES.c.claim == bindparam("claimed_as"))
         .values(claim=None, lease_until=bindparam("lease_ends"))
         .returning(_DELIVERIES.c.webhook_id, _DELIVERIES.c.attempts, _DELIVERIES.c.max_attempts,
                    _DELIVERIES.c.message_id, _DELIVERIES.c.payload))
_HOOK_TO_SEND = select(_WEBHOOKS.c.status, _WEBHOOKS.c.url, _WEBHOOKS.c.secret, _WEBHOOKS.c.previous_secret,
                       _WEBHOOKS.c.previous_secret_until).where(_WEBHOOKS.c.id == bindparam("of_webhook"))
_LOCK_HOOK = (select(_WEBHOOKS.c.status, _WEBHOOKS.c.failing_since)
              .where(_WEBHOOKS.c.id == bindparam("of_webhook")).with_for_update())
_ATTEMPT = insert(cast(Table, WebhookAttempt.__table__))
_AFTER_ATTEMPT = (update(_DELIVERIES).where(_DELIVERIES.c.id == bindparam("delivery"))
                  .values(status=bindparam("new_status"), attempts=bindparam("attempt_number"),
                          next_attempt_at=bindparam("next_at"), lease_until=None, updated_at=bindparam("at")))


def _claim_for(s: Session, webhook_id: str, now: Any) -> list[Claim]:
    """Claim the due deliveries an endpoint has room for. The caller holds the endpoint's row lock, so the count
    of those in flight cannot change under it."""
    conn = s.connection()
    in_flight = conn.execute(_IN_FLIGHT, {"of_webhook": webhook_id, "at": now}).scalar() or 0
    room = MAX_IN_FLIGHT - in_flight
    if room <= 0:
        return []
    token = new_id()  # a message carries (delivery, token): only the row still naming this token is sent
    claimed = conn.execute(_CLAIM, {"of_webhook": webhook_id, "at": now, "room": room, "new_claim": token,
                                    "lease_ends": now + LEASE}).scalars()
    return [Claim(delivery_id, token) for delivery_id in claimed]


def send_delivery(bank: Bank, delivery_id: str, token: str) -> Outcome:
    """Worker: make the attempt this claim stands for, record it, and claim the endpoint's next due deliveries (the
    caller hands them over). A second message for the same claim finds the token taken and does nothing."""
    now = utcnow()
    keys: list[str] = []
    with bank.db.transaction() as s:
        conn = s.connection()
        row = conn.execute(_TAKE, {"delivery": delivery_id, "claimed_as": token, "lease_ends": now + LEASE}).first()
        if row is None:
            return Outcome("stale")
        taken = _Taken(row.webhook_id, row.attempts + 1, row.max_attempts, row.message_id, row.payload)
        hook = conn.execute(_HOOK_TO_SEND, {"of_webhook": taken.webhook_id}).first()
        if hook is None or hook.status != "active":
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                      .values(status="failed", next_attempt_at=None, updated_at=now)
                      .execution_options(synchronize_session=False))
            return Outcome("stale")
        try:
            keys = signing_secrets(bank, hook.secret, hook.previous_secret, hook.previous_secret_until)
        except SecretUnreadable as exc:
            unreadable = str(exc)
    if keys:
        timestamp = int(utcnow().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": taken.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(keys, taken.message_id, timestamp, taken.payload),
        }
        answer = transport.post(hook.url, headers, taken.payload.encode(),
                                allow_private=bank.settings.webhook_allow_private)
    else:
        answer = transport.Answer(None, unreadable, 0)
    return _record(bank, delivery_id, taken, answer)


def _record(bank: Bank, delivery_id: str, taken: _Taken, answer: transport.Answer) -> Outcome:
    """The attempt, the delivery's new state, the endpoint's run of failures, and the endpoint's next claims: one
    transaction under the endpoint's row lock."""
    now = utcnow()
    with bank.db.transaction() as s:
        conn = s.connection()
        hook = conn.execute(_LOCK_HOOK, {"of_webhook": taken.webhook_id}).one()
        conn.execute(_ATTEMPT, {
            "delivery_id": delivery_id, "webhook_id": taken.webhook_id, "attempt": taken.attempt,
            "status_code": answer.status_code, "error": answer.error, "succeeded": answer.succeeded,
            "duration_ms": answer.duration_ms, "at": now})
        if answer.succeeded:
            outcome, status, next_at = Outcome("succeeded", answer, taken.webhook_id), "succeeded", None
            if hook.failing_since is not None:
                s.execute(update(Webhook).where(Webhook.id == taken.webhook_id).values(failing_since=None)
                          .execution_options(synchronize_session=False))
            active = hook.status == "active"
        else:
            active = _failed(s, taken.webhook_id, answer, now)
            if active and taken.attempt < taken.max_attempts:
                outcome, status = Outcome("retrying", answer, taken.webhook_id), "pending"
                next_at = now + timedelta(seconds=RETRY_DELAYS[min(taken.attempt, MAX_ATTEMPTS - 1)])
            else:
                outcome, status, next_at = Outcome("failed", answer, taken.webhook_id), "failed", None
        s.connection().execute(_AFTER_ATTEMPT, {"delivery": delivery_id, "new_status": status,
                                                "attempt_number": taken.attempt, "next_at": next_at, "at": now})
        if active:
            outcome.claims = _claim_for(s, taken.webhook_id, now)
        return outcome


def _failed(s: Session, webhook_id: str, answer: transport.Answer, now: Any) -> bool:
    """A failed attempt extends the endpoint's run of failures and may disable it. Whether it is still active."""
    hook = s.get(Webhook, webhook_id)
    assert hook is not None
    hook.failing_since = hook.failing_since or now
    if hook.status == "active" and answer.status_code == 410:
        _disable(s, hook, "the endpoint answered 410 Gone")
    elif hook.status == "active" and now - as_utc(hook.failing_since) >= DISABLE_AFTER:
        _disable(s, hook, "every delivery failed for 5 days")
    return hook.status == "active"


def _disable(s: Session, hook: Webhook, reason: str) -> None:
    disable(s, hook, reason)
    audit.record(s, None, "webhook.disabled", f"webhook:{hook.id}", reason=reason)
    owner = s.get(User, hook.user_id)
    if owner is not None and owner.status != "closed":
        queue_notification(s, user=owner, channel="email", template="webhook_disabled",
                           context={"url": hook.url, "reason": reason})


def attempt_view(a: WebhookAttempt, d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "event_id": str(d.event_id),
        "webhook_id": a.webhook_id,
        "type": d.type,
        "attempt": a.attempt,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "at": isoformat(a.at),
    }


def list_attempts(bank: Bank, user: User, webhook_id: str, *, limit: int | None,
                  cursor: str | None) -> dict[str, Any]:
    """Every attempt to this endpoint, newest first."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, 1)
    query = (select(WebhookAttempt, WebhookDelivery).join(WebhookDelivery,
                                                          WebhookDelivery.id == WebhookAttempt.delivery_id)
             .where(WebhookAttempt.webhook_id == webhook_id))
    if after:
        if not isinstance(after[0], int) or isinstance(after[0], bool):
            decode_cursor("!", 1)
        query = query.where(WebhookAttempt.id < after[0])
    with bank.db.transaction() as s:
        own_webhook(s, user, webhook_id)
        rows = list(s.execute(query.order_by(WebhookAttempt.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [attempt_view(a, d) for a, d in rows],
            "next_cursor": encode_cursor(rows[-1][0].id) if more else None}


def redeliver(bank: Bank, user: User, webhook_id: str, attempt_id: str) -> dict[str, Any]:
    """Send the delivery an attempt belongs to once more, now (same webhook-id and body, fresh signature).
    Nothing changes while it is already waiting or being sent."""
    ascii_number = isinstance(attempt_id, str) and attempt_id.isascii() and attempt_id.isdigit()
    number = int(attempt_id) if ascii_number and len(attempt_id) < 19 else 0
    with bank.db.transaction() as s:
        hook = own_webhook(s, user, webhook_id)
        found = s.get(WebhookAttempt, number) if number else None
        if found is None or found.webhook_id != hook.id:
            raise NotFound("No such delivery attempt.", code="delivery_not_found")
        if hook.status != "active":
            raise Conflict("The webhook is disabled; enable it first.", code="webhook_disabled")
        delivery = s.get(WebhookDelivery, found.delivery_id, with_for_update=True)
        assert delivery is not None
        if delivery.status in ("succeeded", "failed"):
            now = utcnow()
            delivery.status, delivery.next_attempt_at, delivery.updated_at = "pending", now, now
            delivery.max_attempts = delivery.attempts + 1
            audit.record(s, user.id, "webhook.redelivery_requested", f"webhook:{hook.id}", attempt_id=found.id)
        return {"attempt_id": str(found.id), "event_id": str(delivery.event_id), "webhook_id": hook.id,
                "type": delivery.type, "status": delivery.status}


def delivery_figures(bank: Bank) -> dict[str, Any]:
    """For /metrics: deliveries by status, attempts by outcome, and how late the oldest due delivery is."""
    now = utcnow()
    with bank.db.transaction() as s:
        by_status = {st: int(n) for st, n in s.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))}
        attempts = {bool(ok): int(n) for ok, n in s.execute(
            select(WebhookAttempt.succeeded, func.count()).group_by(WebhookAttempt.succeeded))}
        oldest = s.scalar(select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now))
    lag = max(0.0, (now - as_utc(oldest)).total_seconds()) if oldest else 0.0
    return {"by_status": by_status, "attempts": {"succeeded": attempts.get(True, 0), "failed": attempts.get(False, 0)},
            "oldest_due_seconds": lag}

