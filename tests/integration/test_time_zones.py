"""The customer's time zone over HTTP on real PostgreSQL: chosen at registration or later, refused when unknown,
used only to show times; every instant is still stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text

from core.clock import clock
from core.models import AuditEvent, Reminder, User
from tests.support import auth_headers, make_user, open_account

API = "/api/v1"
REGISTER = {"username": "greta", "email": "greta@example.com", "password": "violet-harbour-19", "full_name": "Greta G"}


def _user(bank, username):
    with bank.db.transaction() as s:
        return s.scalar(select(User).where(User.username == username))


def _me(client, headers):
    response = client.get(f"{API}/auth/me", headers=headers)
    assert response.status_code == 200
    return response.get_json()


def test_register_with_a_zone_or_utc_by_default(bank, client):
    created = client.post(f"{API}/auth/register", json={**REGISTER, "time_zone": "Europe/Berlin"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["time_zone"] == "Europe/Berlin"
    assert _user(bank, "greta").time_zone == "Europe/Berlin"

    plain = {**REGISTER, "username": "hugo", "email": "hugo@example.com"}
    assert client.post(f"{API}/auth/register", json=plain).get_json()["time_zone"] == "UTC"
    tokens = client.post(f"{API}/auth/login", json={"username": "hugo", "password": REGISTER["password"]}).get_json()
    assert _me(client, {"Authorization": f"Bearer {tokens['access_token']}"})["time_zone"] == "UTC"


def test_an_unknown_zone_is_refused_and_nothing_is_written(bank, client):
    for bad in ("Mars/Olympus_Mons", "europe/berlin", "../../etc/passwd", "", "x" * 65, None, 5):
        response = client.post(f"{API}/auth/register", json={**REGISTER, "time_zone": bad})
        body = response.get_json()
        assert (response.status_code, body["code"]) == (422, "validation_error"), (bad, body)
        assert "time_zone" in body["errors"], (bad, body)
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_patch_me_changes_only_the_callers_profile(bank, client):
    user = make_user(bank, phone="+49 30 1234567")
    other = make_user(bank)
    headers = auth_headers(client, user)

    changed = client.patch(f"{API}/auth/me", json={"time_zone": "America/New_York"}, headers=headers)
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["time_zone"] == "America/New_York"
    assert changed.get_json()["phone"] == "+49 30 1234567"  # untouched

    both = client.patch(f"{API}/auth/me", json={"full_name": "  Ada Lovelace ", "phone": None}, headers=headers)
    assert both.status_code == 200
    assert (both.get_json()["full_name"], both.get_json()["phone"]) == ("Ada Lovelace", None)
    assert _me(client, headers)["time_zone"] == "America/New_York"

    bad = client.patch(f"{API}/auth/me", json={"time_zone": "Europe/Atlantis", "full_name": "X"}, headers=headers)
    assert (bad.status_code, bad.get_json()["code"]) == (422, "validation_error")
    assert set(bad.get_json()["errors"]) == {"time_zone"}
    for refused in ({"role": "admin"}, {"kyc_status": "verified"}, {"full_name": ""}, {"time_zone": None}):
        response = client.patch(f"{API}/auth/me", json=refused, headers=headers)
        assert response.status_code == 422, (refused, response.get_json())
    assert client.patch(f"{API}/auth/me", json={"time_zone": "UTC"}).status_code == 401

    stored = _user(bank, user.username)
    assert (stored.time_zone, stored.full_name, stored.phone, stored.role) == (
        "America/New_York",
        "Ada Lovelace",
        None,
        "customer",
    )
    assert _user(bank, other.username).time_zone == "UTC"
    with bank.db.transaction() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == user.id)))
    assert actions.count("user.profile_updated") == 2


def test_a_reminder_is_stored_in_utc_and_shown_in_the_customers_zone(bank, client):
    clock.freeze(datetime(2027, 3, 27, 12, 0, tzinfo=UTC))
    user = make_user(bank, time_zone="Europe/Berlin")
    headers = auth_headers(client, user)
    # 01:30 UTC on the night Berlin springs forward: 03:30 CEST, not 02:30.
    body = {"message": "Water the plants", "remind_at": "2027-03-28T01:30:00Z", "channel": "in_app", "repeat": "daily"}
    created = client.post(f"{API}/reminders", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    view = created.get_json()
    assert view["remind_at"] == view["next_at"] == "2027-03-28T01:30:00Z"
    assert view["remind_at_local"] == view["next_at_local"] == "2027-03-28T03:30:00+02:00"
    assert view["time_zone"] == "Europe/Berlin"

    # The same instant given with a local offset is the same reminder time.
    local = client.post(f"{API}/reminders", json={**body, "remind_at": "2027-03-28T03:30:00+02:00"}, headers=headers)
    assert local.get_json()["remind_at"] == "2027-03-28T01:30:00Z"

    with bank.db.transaction() as s:
        stored = s.scalar(
            text("SELECT to_char(remind_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM reminders WHERE id = :id"),
            {"id": view["id"]},
        )
        reminder = s.get(Reminder, view["id"])
        assert reminder is not None
        assert reminder.remind_at == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert stored == "2027-03-28 01:30:00"

    # Moving to New York changes what is shown, never what is stored.
    client.patch(f"{API}/auth/me", json={"time_zone": "America/New_York"}, headers=headers)
    shown = client.get(f"{API}/reminders/{view['id']}", headers=headers).get_json()
    assert shown["remind_at"] == "2027-03-28T01:30:00Z"
    assert shown["remind_at_local"] == "2027-03-27T21:30:00-04:00"
    listed = client.get(f"{API}/reminders", headers=headers).get_json()["items"]
    assert {r["time_zone"] for r in listed} == {"America/New_York"}


def test_standing_orders_keep_utc_dates_and_show_their_creation_locally(bank, client):
    clock.freeze(datetime(2027, 10, 31, 1, 30, tzinfo=UTC))  # Berlin's second 02:30 of the night
    user = make_user(bank, time_zone="Europe/Berlin")
    payee = make_user(bank)
    source, destination = open_account(bank, user, "EUR", 100_00), open_account(bank, payee, "EUR")
    headers = auth_headers(client, user)
    body = {
        "source_account_id": source,
        "destination_account_id": destination,
        "amount": "10.00",
        "currency": "EUR",
        "frequency": "monthly",
        "start_date": "2027-10-31",
    }
    created = client.post(f"{API}/standing-orders", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    order = created.get_json()
    assert order["created_at"] == "2027-10-31T01:30:00Z"
    assert order["created_at_local"] == "2027-10-31T02:30:00+01:00"
    assert order["time_zone"] == "Europe/Berlin"
    assert (order["start_date"], order["next_date"]) == ("2027-10-31", "2027-10-31")  # UTC dates, unchanged
    shown = client.get(f"{API}/standing-orders/{order['id']}", headers=headers).get_json()
    assert shown["created_at_local"] == order["created_at_local"]


def test_jobs_and_transfers_stay_in_utc(bank, client):
    clock.freeze(datetime(2027, 6, 1, 12, 0, tzinfo=UTC))
    user = make_user(bank, time_zone="America/New_York")
    payee = make_user(bank)
    source, destination = open_account(bank, user, "EUR", 100_00), open_account(bank, payee, "EUR")
    body = {"source_account_id": source, "destination_account_id": destination, "amount": "1.00", "currency": "EUR"}
    headers = auth_headers(client, user, **{"Idempotency-Key": "k1"})
    response = client.post(f"{API}/transfers", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["created_at"].endswith("Z") and not any(key.endswith("_local") for key in job)
