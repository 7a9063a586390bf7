"""Reminders on real PostgreSQL: once, repeating, deleted, caught up after downtime, and never sent twice by
concurrent ticks. The clock is frozen and moved by hand; the tick is the beat task's core function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from core import reminders
from core.clock import clock, isoformat
from core.models import Notification, OutboxMessage, Reminder, ReminderOccurrence
from tests.support import Recorder, auth_headers, make_user, run_concurrently

T0 = datetime(2027, 1, 31, 8, 0, tzinfo=UTC)


def _count(bank, model, *where):
    with bank.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _create(client, headers, **fields):
    body = {"message": "Pay the rent", "remind_at": isoformat(T0 + timedelta(hours=1)), "channel": "in_app"}
    response = client.post("/api/v1/reminders", json={**body, **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


_concurrently = run_concurrently


def _notifications(bank, user):
    with bank.db.transaction() as s:
        return list(
            s.scalars(
                select(Notification)
                .where(Notification.user_id == user.id, Notification.template == "reminder")
                .order_by(Notification.created_at)
            )
        )


def test_a_reminder_once(bank, client):
    clock.freeze(T0)
    user = make_user(bank)
    headers = auth_headers(client, user)
    created = _create(client, headers, channel="email")
    assert created["status"] == "active" and created["repeat"] == "none"
    assert created["remind_at"] == created["next_at"] == "2027-01-31T09:00:00Z"
    shown = {"id", "message", "remind_at", "channel", "repeat", "status", "next_at", "created_at"}
    assert set(created) == shown | {"remind_at_local", "next_at_local", "time_zone"}
    assert created["time_zone"] == "UTC" and created["remind_at_local"] == "2027-01-31T09:00:00+00:00"

    assert reminders.send_due_reminders(bank).sent == 0  # not due yet
    clock.advance(hours=1)
    bank.db.publisher = recorder = Recorder()
    report = reminders.send_due_reminders(bank)
    assert report.sent == 1 and len(recorder.calls) == 1 and len(recorder.calls[0]) == 1
    assert reminders.send_due_reminders(bank).sent == 0

    [sent] = _notifications(bank, user)
    assert (sent.channel, sent.recipient, sent.context) == ("email", user.email, {"message": "Pay the rent"})
    assert _count(bank, OutboxMessage, OutboxMessage.job_id == sent.id) == 1  # the notify worker's message
    [listed] = client.get("/api/v1/reminders", headers=headers).get_json()["items"]
    assert (listed["status"], listed["next_at"]) == ("done", None)
    clock.advance(days=40)
    assert reminders.send_due_reminders(bank).sent == 0
    assert len(_notifications(bank, user)) == 1


def test_a_daily_reminder_repeats_once_per_day(bank, client):
    clock.freeze(T0)
    user = make_user(bank)
    headers = auth_headers(client, user)
    _create(client, headers, repeat="daily")
    clock.advance(hours=1)
    for _ in range(4):
        assert reminders.send_due_reminders(bank).sent == 1
        assert reminders.send_due_reminders(bank).sent == 0
        clock.advance(days=1)
    due = [n.created_at for n in _notifications(bank, user)]
    assert len(due) == 4
    with bank.db.transaction() as s:
        occurrences = list(s.scalars(select(ReminderOccurrence.due_at).order_by(ReminderOccurrence.due_at)))
    assert occurrences == [T0 + timedelta(hours=1, days=d) for d in range(4)]


def test_a_monthly_reminder_on_the_31st_keeps_its_day(bank, client):
    clock.freeze(T0)
    user = make_user(bank)
    _create(client, auth_headers(client, user), repeat="monthly")
    expected = [datetime(2027, m, d, 9, tzinfo=UTC) for m, d in ((1, 31), (2, 28), (3, 31), (4, 30))]
    for at in expected:
        clock.freeze(at)
        assert reminders.send_due_reminders(bank).sent == 1
    with bank.db.transaction() as s:
        assert list(s.scalars(select(ReminderOccurrence.due_at).order_by(ReminderOccurrence.due_at))) == expected
        assert s.scalar(select(Reminder.next_at)) == datetime(2027, 5, 31, 9, tzinfo=UTC)


def test_delete_stops_it_and_is_private(bank, client):
    clock.freeze(T0)
    user, other = make_user(bank), make_user(bank)
    headers, other_headers = auth_headers(client, user), auth_headers(client, other)
    reminder = _create(client, headers, repeat="daily")
    clock.advance(hours=1)
    assert reminders.send_due_reminders(bank).sent == 1

    assert client.delete(f"/api/v1/reminders/{reminder['id']}", headers=other_headers).status_code == 404
    assert client.get(f"/api/v1/reminders/{reminder['id']}", headers=other_headers).status_code == 404
    assert client.get("/api/v1/reminders", headers=other_headers).get_json()["items"] == []
    assert client.delete("/api/v1/reminders/no-such-id", headers=headers).status_code == 404
    assert client.delete(f"/api/v1/reminders/{reminder['id']}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/reminders/{reminder['id']}", headers=headers).status_code == 204

    clock.advance(days=5)
    assert reminders.send_due_reminders(bank).sent == 0
    assert len(_notifications(bank, user)) == 1
    shown = client.get(f"/api/v1/reminders/{reminder['id']}", headers=headers).get_json()
    assert (shown["status"], shown["next_at"]) == ("cancelled", None)


def test_catch_up_after_two_days_sends_each_missed_occurrence_once(bank, client):
    clock.freeze(T0)
    user = make_user(bank)
    _create(client, auth_headers(client, user), repeat="daily")
    clock.advance(hours=1)
    assert reminders.send_due_reminders(bank).sent == 1

    clock.advance(days=2, minutes=5)  # beat was down for two days
    report = reminders.send_due_reminders(bank)
    assert (report.sent, report.skipped) == (2, 0)
    assert reminders.send_due_reminders(bank).sent == 0
    assert len(_notifications(bank, user)) == 3
    assert _count(bank, ReminderOccurrence, ReminderOccurrence.status == "sent") == 3


def test_catch_up_after_ten_days_skips_the_old_ones_with_a_reason(bank, client):
    clock.freeze(T0)
    user = make_user(bank)
    _create(client, auth_headers(client, user), repeat="daily")
    clock.advance(hours=1)
    assert reminders.send_due_reminders(bank).sent == 1
    first = T0 + timedelta(hours=1)

    clock.advance(days=10)  # due: days 1..10 after the first; the window (3 days) covers days 7..10
    report = reminders.send_due_reminders(bank)
    assert (report.sent, report.skipped) == (4, 6)
    assert reminders.send_due_reminders(bank).sent == 0
    assert len(_notifications(bank, user)) == 5
    with bank.db.transaction() as s:
        rows = list(s.scalars(select(ReminderOccurrence).order_by(ReminderOccurrence.due_at)))
    assert [(r.due_at, r.status) for r in rows] == [
        (first + timedelta(days=d), "sent" if d == 0 or d >= 7 else "skipped") for d in range(11)
    ]
    skipped = [r for r in rows if r.status == "skipped"]
    assert all("catch-up window" in r.reason and r.notification_id is None for r in skipped)
    assert all(r.notification_id for r in rows if r.status == "sent")


def test_two_concurrent_ticks_send_each_occurrence_once(bank, client):
    clock.freeze(T0)
    users = [make_user(bank) for _ in range(4)]
    for user in users:
        headers = auth_headers(client, user)
        for i in range(15):
            _create(client, headers, message=f"reminder {i}", repeat="daily" if i % 2 else "none")
    clock.advance(hours=1)
    for _round in range(3):
        reports = _concurrently(lambda: reminders.send_due_reminders(bank, batch_size=5))
        assert sum(r.sent for r in reports) == (60 if _round == 0 else 28)
        clock.advance(days=1)
    with bank.db.transaction() as s:
        per_reminder = s.execute(
            select(ReminderOccurrence.reminder_id, ReminderOccurrence.due_at, func.count())
            .group_by(ReminderOccurrence.reminder_id, ReminderOccurrence.due_at)
            .having(func.count() > 1)
        ).all()
        assert per_reminder == []
        assert s.scalar(select(func.count()).select_from(Notification)) == 60 + 28 + 28
        assert s.scalar(select(func.count()).select_from(ReminderOccurrence)) == 60 + 28 + 28


def test_bad_reminders_are_refused_and_write_nothing(bank, client):
    clock.freeze(T0)
    user = make_user(bank)  # no phone number
    headers = auth_headers(client, user)
    later = isoformat(T0 + timedelta(hours=1))
    cases = [
        ({"message": "", "remind_at": later, "channel": "email"}, 422),
        ({"message": "x" * 501, "remind_at": later, "channel": "email"}, 422),
        ({"message": "hi", "remind_at": isoformat(T0 - timedelta(seconds=1)), "channel": "email"}, 422),
        ({"message": "hi", "remind_at": isoformat(T0), "channel": "email"}, 422),
        ({"message": "hi", "remind_at": isoformat(T0 + timedelta(days=2 * 366)), "channel": "email"}, 422),
        ({"message": "hi", "remind_at": later, "channel": "pigeon"}, 422),
        ({"message": "hi", "remind_at": later, "channel": "email", "repeat": "yearly"}, 422),
        ({"message": "hi", "remind_at": "tomorrow", "channel": "email"}, 422),
        ({"message": "hi", "remind_at": later, "channel": "sms"}, 422),  # no phone on file
        ({"message": "hi", "remind_at": later, "channel": "email", "extra": 1}, 422),
        ({"remind_at": later, "channel": "email"}, 422),
    ]
    for body, status in cases:
        response = client.post("/api/v1/reminders", json=body, headers=headers)
        assert response.status_code == status, (body, response.get_json())
    anonymous = client.post("/api/v1/reminders", json={"message": "hi", "remind_at": later, "channel": "email"})
    assert anonymous.status_code == 401
    assert _count(bank, Reminder) == 0
    assert client.get("/api/v1/reminders?limit=0", headers=headers).status_code == 422


def test_list_is_paginated(bank, client):
    clock.freeze(T0)
    user = make_user(bank)
    headers = auth_headers(client, user)
    ids = []
    for i in range(5):
        ids.append(_create(client, headers, message=f"m{i}")["id"])
        clock.advance(seconds=1)
    first = client.get("/api/v1/reminders?limit=2", headers=headers).get_json()
    assert [r["id"] for r in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    rest = client.get(f"/api/v1/reminders?limit=10&cursor={first['next_cursor']}", headers=headers).get_json()
    assert [r["id"] for r in rest["items"]] == ids[::-1][2:] and rest["next_cursor"] is None
