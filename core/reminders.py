"""Customers' reminders: once or repeating, sent through the notification machinery, each occurrence once.

The beat tick claims due reminders (FOR UPDATE SKIP LOCKED, so concurrent ticks share the work and never wait),
and for every occurrence that is due writes an occurrence row and queues the notification in the same
transaction, then moves `next_at` on. The unique (reminder, due_at) key is the last guard: an occurrence that
is already recorded is never sent again. After downtime, occurrences of the last BANKQ_CATCH_UP_DAYS are still
sent; older ones are recorded as skipped, with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit
from core.bank import Bank
from core.clock import as_utc, isoformat, utcnow
from core.errors import BankqError, NotFound, ValidationFailed
from core.models import Reminder, ReminderOccurrence, User
from core.notifications import CHANNELS, queue_notification
from core.pagination import newest_first
from core.schedule_math import FREQUENCIES, add_months, catch_up_days, following_at
from core.time_zones import local_isoformat

REPEATS = ("none", *FREQUENCIES)
MAX_AHEAD_MONTHS = 24
MAX_MESSAGE = 500
SKIPPED_REASON = "missed: due {due} while the scheduler was down, older than the {days}-day catch-up window"


@dataclass(frozen=True)
class NewReminder:
    message: str
    remind_at: datetime
    channel: str
    repeat: str = "none"


@dataclass
class TickReport:
    """What a tick did."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0


def reminder_view(r: Reminder, time_zone: str) -> dict[str, Any]:
    """UTC times, and the same instants in the customer's zone for display."""
    return {
        "id": r.id,
        "message": r.message,
        "remind_at": isoformat(r.remind_at),
        "remind_at_local": local_isoformat(r.remind_at, time_zone),
        "channel": r.channel,
        "repeat": r.repeat,
        "status": r.status,
        "next_at": isoformat(r.next_at),
        "next_at_local": local_isoformat(r.next_at, time_zone),
        "time_zone": time_zone,
        "created_at": isoformat(r.created_at),
    }


def _check(user: User, new: NewReminder, now: datetime) -> datetime:
    if not isinstance(new.message, str) or not 1 <= len(new.message.strip()) <= MAX_MESSAGE:
        raise ValidationFailed("Invalid message.", errors={"message": [f"1-{MAX_MESSAGE} characters."]})
    if new.channel not in CHANNELS:
        raise ValidationFailed("Unknown channel.", errors={"channel": [f"One of {', '.join(CHANNELS)}."]})
    if new.repeat not in REPEATS:
        raise ValidationFailed("Unknown repeat.", errors={"repeat": [f"One of {', '.join(REPEATS)}."]})
    if new.channel == "sms" and not user.phone:
        raise ValidationFailed(
            "No phone number on file.", code="no_phone", errors={"channel": ["The user has no phone number for SMS."]}
        )
    remind_at = as_utc(new.remind_at)
    if remind_at <= now:
        raise ValidationFailed("The reminder must be in the future.", errors={"remind_at": ["Must be in the future."]})
    if remind_at.date() > add_months(now.date(), MAX_AHEAD_MONTHS):
        raise ValidationFailed("Too far ahead.", errors={"remind_at": ["At most two years ahead."]})
    return remind_at


def create_reminder(bank: Bank, user: User, new: NewReminder) -> dict[str, Any]:
    now = utcnow()
    remind_at = _check(user, new, now)
    with bank.db.transaction() as s:
        reminder = Reminder(
            user_id=user.id,
            message=new.message,
            channel=new.channel,
            repeat=new.repeat,
            status="active",
            remind_at=remind_at,
            next_at=remind_at,
            created_at=now,
            updated_at=now,
        )
        s.add(reminder)
        s.flush()
        audit.record(s, user.id, "reminder.created", f"reminder:{reminder.id}", repeat=new.repeat)
        return reminder_view(reminder, user.time_zone)


def _own(s: Session, user: User, reminder_id: str, *, lock: bool = False) -> Reminder:
    valid = isinstance(reminder_id, str) and len(reminder_id) <= 36
    reminder = s.get(Reminder, reminder_id, with_for_update=lock) if valid else None
    if reminder is None or reminder.user_id != user.id:
        raise NotFound("No such reminder.", code="reminder_not_found")
    return reminder


def get_reminder(bank: Bank, user: User, reminder_id: str) -> dict[str, Any]:
    with bank.db.transaction() as s:
        return reminder_view(_own(s, user, reminder_id), user.time_zone)


def list_reminders(bank: Bank, user: User, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """The caller's reminders, newest first."""
    with bank.db.transaction() as s:
        rows, next_cursor = newest_first(
            s, select(Reminder).where(Reminder.user_id == user.id), Reminder, limit=limit, cursor=cursor
        )
    return {"items": [reminder_view(r, user.time_zone) for r in rows], "next_cursor": next_cursor}


def cancel_reminder(bank: Bank, user: User, reminder_id: str) -> None:
    """Stop future occurrences. Waits for a tick holding the reminder, so nothing is sent after this returns."""
    with bank.db.transaction() as s:
        reminder = _own(s, user, reminder_id, lock=True)
        if reminder.status != "active":
            return
        reminder.status, reminder.next_at, reminder.updated_at = "cancelled", None, utcnow()
        audit.record(s, user.id, "reminder.cancelled", f"reminder:{reminder.id}")


def send_due_reminders(bank: Bank, *, batch_size: int = 100, catch_up: int | None = None) -> TickReport:
    """Beat: act on every due occurrence of every active reminder, once. Safe to run anywhere, concurrently."""
    days = catch_up_days() if catch_up is None else catch_up
    report = TickReport()
    while True:
        now = utcnow()
        with bank.db.transaction() as s:
            due = list(
                s.scalars(
                    select(Reminder)
                    .where(Reminder.status == "active", Reminder.next_at <= now)
                    .order_by(Reminder.next_at)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            for reminder in due:
                _act_on(s, reminder, now, now - timedelta(days=days), days, report)
        if len(due) < batch_size:
            return report


def _act_on(
    s: Session,
    reminder: Reminder,
    now: datetime,
    horizon: datetime,
    days: int,
    report: TickReport,
) -> None:
    user = s.get(User, reminder.user_id)
    due_at: datetime | None = as_utc(reminder.next_at) if reminder.next_at else None
    while due_at is not None and due_at <= now:
        if due_at < horizon:
            reason = SKIPPED_REASON.format(due=isoformat(due_at), days=days)
            if _record(s, reminder, due_at, "skipped", reason):
                report.skipped += 1
        elif user is None or user.status == "closed":
            if _record(s, reminder, due_at, "failed", "the customer's profile is closed"):
                report.failed += 1
        else:
            _send(s, reminder, user, due_at, report)
        due_at = (
            None if reminder.repeat == "none" else following_at(as_utc(reminder.remind_at), reminder.repeat, due_at)
        )
    reminder.next_at = due_at
    reminder.updated_at = now
    if due_at is None:
        reminder.status = "done"


def _send(s: Session, reminder: Reminder, user: User, due_at: datetime, report: TickReport) -> None:
    try:
        with s.begin_nested():
            occurrence = ReminderOccurrence(reminder_id=reminder.id, due_at=due_at, status="sent", created_at=utcnow())
            s.add(occurrence)
            s.flush()  # the unique (reminder, due_at) decides before anything is queued
            notification = queue_notification(
                s, user=user, channel=reminder.channel, template="reminder", context={"message": reminder.message}
            )
            occurrence.notification_id = notification.id
            s.flush()
    except IntegrityError:
        return  # recorded by another tick already: never twice
    except BankqError as exc:  # e.g. the phone number was removed since: record why, never retry forever
        _record(s, reminder, due_at, "failed", f"{exc.code}: {exc.detail}"[:200])
        report.failed += 1
        return
    report.sent += 1


def _record(s: Session, reminder: Reminder, due_at: datetime, status: str, reason: str) -> bool:
    try:
        with s.begin_nested():
            s.add(
                ReminderOccurrence(
                    reminder_id=reminder.id, due_at=due_at, status=status, reason=reason, created_at=utcnow()
                )
            )
    except IntegrityError:
        return False
    return True
