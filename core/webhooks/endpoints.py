"""Customers' webhook endpoints: create, list, change, delete, rotate the secret. Each is its owner's alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import audit
from core.bank import Bank
from core.clock import as_utc, isoformat, utcnow
from core.errors import NotFound, ValidationFailed
from core.models import User, Webhook, WebhookDelivery
from core.pagination import newest_first
from core.webhooks.addresses import check_url
from core.webhooks.secrets import new_secret, seal, unseal

EVENT_TYPES = ("job.succeeded", "job.failed", "job.cancelled", "job.awaiting_confirmation", "kyc.decided")
MAX_DESCRIPTION = 500
MAX_WEBHOOKS = 20  # per customer, deleted ones not counted
ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class NewWebhook:
    url: str
    events: list[str]
    description: str | None = None


def webhook_view(hook: Webhook, secret: str | None = None) -> dict[str, Any]:
    view = {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "status": hook.status,
        "disabled_reason": hook.disabled_reason,
        "created_at": isoformat(hook.created_at),
        "updated_at": isoformat(hook.updated_at),
    }
    if secret is not None:
        view["secret"] = secret
    return view


def _events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events:
        raise ValidationFailed("Choose at least one event type.", errors={"events": ["At least one event type."]})
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed("Unknown event type.", code="unknown_event_type",
                               errors={"events": [f"One of {', '.join(EVENT_TYPES)}."]})
    return [e for e in EVENT_TYPES if e in events]  # each once, in a fixed order


def _description(description: Any) -> str | None:
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION):
        raise ValidationFailed("Invalid description.",
                               errors={"description": [f"At most {MAX_DESCRIPTION} characters."]})
    return description


def create_webhook(bank: Bank, user: User, new: NewWebhook) -> dict[str, Any]:
    url = check_url(new.url, allow_private=bank.settings.webhook_allow_private)
    events, description = _events(new.events), _description(new.description)
    secret = new_secret()
    now = utcnow()
    with bank.db.transaction() as s:
        s.execute(select(User.id).where(User.id == user.id).with_for_update())  # one count at a time per user
        owned = s.scalar(select(func.count()).select_from(Webhook).where(
            Webhook.user_id == user.id, Webhook.status != "deleted"))
        if owned is not None and owned >= MAX_WEBHOOKS:
            raise ValidationFailed(f"At most {MAX_WEBHOOKS} webhooks per customer.", code="too_many_webhooks")
        hook = Webhook(user_id=user.id, url=url, events=events, description=description, status="active",
                       secret=seal(bank.settings.secret_key, secret), created_at=now, updated_at=now)
        s.add(hook)
        s.flush()
        audit.record(s, user.id, "webhook.created", f"webhook:{hook.id}", events=events)
        return webhook_view(hook, secret)


def own_webhook(s: Session, user: User, webhook_id: str, *, lock: bool = False) -> Webhook:
    valid = isinstance(webhook_id, str) and len(webhook_id) <= 36
    hook = s.get(Webhook, webhook_id, with_for_update=lock) if valid else None
    if hook is None or hook.user_id != user.id or hook.status == "deleted":
        raise NotFound("No such webhook.", code="webhook_not_found")
    return hook


def get_webhook(bank: Bank, user: User, webhook_id: str) -> dict[str, Any]:
    with bank.db.transaction() as s:
        return webhook_view(own_webhook(s, user, webhook_id))


def list_webhooks(bank: Bank, user: User, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """The caller's webhooks, newest first."""
    query = select(Webhook).where(Webhook.user_id == user.id, Webhook.status != "deleted")
    with bank.db.transaction() as s:
        rows, next_cursor = newest_first(s, query, Webhook, limit=limit, cursor=cursor)
    return {"items": [webhook_view(h) for h in rows], "next_cursor": next_cursor}


def update_webhook(bank: Bank, user: User, webhook_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """PATCH: any of url, events, description, status (active | disabled). Re-enabling starts a fresh record."""
    if "url" in changes:
        changes["url"] = check_url(changes["url"], allow_private=bank.settings.webhook_allow_private)
    if "events" in changes:
        changes["events"] = _events(changes["events"])
    if "description" in changes:
        changes["description"] = _description(changes["description"])
    if changes.get("status", "active") not in ("active", "disabled"):
        raise ValidationFailed("Unknown status.", errors={"status": ["active or disabled."]})
    with bank.db.transaction() as s:
        hook = own_webhook(s, user, webhook_id, lock=True)
        status = changes.pop("status", None)
        for name, value in changes.items():
            setattr(hook, name, value)
        if status == "disabled" and hook.status == "active":
            disable(s, hook, "disabled by its owner")
        elif status == "active" and hook.status == "disabled":
            hook.status, hook.disabled_reason, hook.failing_since = "active", None, None
        hook.updated_at = utcnow()
        audit.record(s, user.id, "webhook.updated", f"webhook:{hook.id}",
                     fields=sorted(changes) + (["status"] if status else []))
        return webhook_view(hook)


def delete_webhook(bank: Bank, user: User, webhook_id: str) -> None:
    """Nothing more is sent; the delivery history stays for the audit, the secret goes."""
    with bank.db.transaction() as s:
        hook = own_webhook(s, user, webhook_id, lock=True)
        abandon_pending(s, hook)
        hook.status, hook.disabled_reason, hook.updated_at = "deleted", "deleted by its owner", utcnow()
        hook.secret, hook.previous_secret, hook.previous_secret_until = "", None, None
        audit.record(s, user.id, "webhook.deleted", f"webhook:{hook.id}")


def rotate_secret(bank: Bank, user: User, webhook_id: str) -> dict[str, Any]:
    """A new secret signs from now on; the one it replaces signs too for 24 h (both signatures are sent)."""
    secret = new_secret()
    now = utcnow()
    with bank.db.transaction() as s:
        hook = own_webhook(s, user, webhook_id, lock=True)
        hook.previous_secret, hook.previous_secret_until = hook.secret, now + ROTATION_OVERLAP
        hook.secret, hook.updated_at = seal(bank.settings.secret_key, secret), now
        audit.record(s, user.id, "webhook.secret_rotated", f"webhook:{hook.id}")
        return webhook_view(hook, secret)


def signing_secrets(bank: Bank, secret: str, previous: str | None, previous_until: datetime | None) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its 24 h."""
    key = bank.settings.secret_key
    found = [unseal(key, secret)]
    if previous and previous_until is not None and as_utc(previous_until) > utcnow():
        found.append(unseal(key, previous))
    return found


def disable(s: Session, hook: Webhook, reason: str) -> None:
    hook.status, hook.disabled_reason, hook.updated_at = "disabled", reason[:200], utcnow()
    abandon_pending(s, hook)


def abandon_pending(s: Session, hook: Webhook) -> None:
    """Deliveries still waiting for a retry stop; the owner can redeliver any of them later."""
    s.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id, WebhookDelivery.status == "pending")
        .values(status="failed", next_attempt_at=None, updated_at=utcnow())
    )
