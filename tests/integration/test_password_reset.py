"""Password reset end to end on real PostgreSQL and Redis: no account enumeration (body, status, timing, attempt
counters), the emailed code, old tokens revoked, lockout cleared, audit."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import otp, password_reset
from core.clock import clock, utcnow
from core.models import AuditEvent, Notification, OneTimeCode, User
from tests.support import PASSWORD, make_user

NEW_PASSWORD = "quiet-lantern-meadow-42"
REAL_FLOOR = password_reset.MIN_SECONDS


@pytest.fixture(autouse=True)
def quick_floor(monkeypatch):
    """The timing floor costs every call; only the timing test needs the real one."""
    monkeypatch.setattr(password_reset, "MIN_SECONDS", 0.02)


def ask(client, email):
    return client.post("/api/v1/auth/password-reset", json={"email": email})


def confirm(client, email, code, new_password=NEW_PASSWORD):
    return client.post(
        "/api/v1/auth/password-reset/confirm", json={"email": email, "code": code, "new_password": new_password}
    )


def login(client, username, password):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def emailed_code(bank, user) -> str:
    """The code of the user's active reset code, read from the queued email's stored context (fine for a test)."""
    with bank.db.transaction() as s:
        active = s.scalar(select(OneTimeCode).where(OneTimeCode.user_id == user.id, OneTimeCode.status == "active"))
        notes = list(
            s.scalars(
                select(Notification).where(Notification.user_id == user.id, Notification.template == "password_reset")
            )
        )
    for note in notes:
        assert note.channel == "email" and note.recipient == user.email
        if otp.code_hash(bank.settings, active.id, note.context["code"]) == active.code_hash:
            return str(note.context["code"])
    raise AssertionError("no email carries the active code")


def outcome(answer) -> tuple:
    body = answer.get_json(silent=True) or {}
    return answer.status_code, body.get("code"), body.get("attempts_remaining"), answer.headers.get("Retry-After")


def test_reset_end_to_end_revokes_every_old_token(bank, client) -> None:
    user = make_user(bank)
    tokens = login(client, user.username, PASSWORD).get_json()
    old = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=old).status_code == 200

    answer = ask(client, user.email.upper())  # addresses are matched case-insensitively
    assert answer.status_code == 202
    code = emailed_code(bank, user)
    assert code not in answer.get_data(as_text=True)
    done = confirm(client, user.email, code)
    assert done.status_code == 204 and done.get_data() == b""

    assert client.get("/api/v1/auth/me", headers=old).status_code == 401
    refresh = client.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert refresh.status_code == 401
    assert login(client, user.username, PASSWORD).status_code == 401
    fresh = login(client, user.username, NEW_PASSWORD)
    assert fresh.status_code == 200
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {fresh.get_json()['access_token']}"})
    assert me.status_code == 200

    again = confirm(client, user.email, code, "another-fine-passphrase-7")
    assert outcome(again)[:2] == (410, "expired")  # single use
    with bank.db.transaction() as s:
        stored = s.get(User, user.id)
        assert stored.password_hash.startswith("$argon2id$") and stored.token_version == 1
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.target == f"user:{user.id}")))
    assert "user.password_reset_requested" in actions and "user.password_reset" in actions


def test_unknown_address_gets_the_same_answer_and_nothing_is_sent(bank, client, monkeypatch) -> None:
    monkeypatch.setattr(password_reset, "MIN_SECONDS", REAL_FLOOR)
    user = make_user(bank)
    timings = {}
    answers = {}
    for label, email in (("known", user.email), ("unknown", "nobody-at-all@example.com")):
        started = time.monotonic()
        answers[label] = ask(client, email)
        timings[label] = time.monotonic() - started
    assert answers["known"].status_code == answers["unknown"].status_code == 202
    assert answers["known"].get_data() == answers["unknown"].get_data()
    assert dict(answers["known"].headers) == dict(answers["unknown"].headers)
    assert min(timings.values()) >= REAL_FLOOR
    assert abs(timings["known"] - timings["unknown"]) < 0.1, timings
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 1
        assert s.scalar(select(func.count()).select_from(OneTimeCode)) == 1


def test_wrong_codes_look_the_same_for_known_and_unknown_addresses(bank, client) -> None:
    """attempts_remaining, the block and its Retry-After move alike: nothing tells the addresses apart."""
    clock.freeze(utcnow())
    user = make_user(bank)
    unknown = f"ghost-{uuid.uuid4().hex[:6]}@example.com"
    never_asked = f"ghost-{uuid.uuid4().hex[:6]}@example.com"
    assert outcome(confirm(client, user.email, "000000"))[:2] == outcome(confirm(client, never_asked, "000000"))[:2]
    ask(client, user.email)
    ask(client, unknown)
    code = emailed_code(bank, user)
    guess = "000000" if code != "000000" else "111111"
    known_seen = [outcome(confirm(client, user.email, guess)) for _ in range(6)]
    unknown_seen = [outcome(confirm(client, unknown, guess)) for _ in range(6)]
    assert known_seen == unknown_seen
    assert [o[:3] for o in known_seen[:5]] == [(422, "invalid_code", n) for n in (4, 3, 2, 1, 0)]
    assert known_seen[5][:2] == (429, "too_many_attempts")
    assert outcome(confirm(client, user.email, code))[:2] == (429, "too_many_attempts")  # blocked, even right
    clock.advance(minutes=10)
    ask(client, user.email)
    ask(client, unknown)
    assert outcome(confirm(client, user.email, guess)) == outcome(confirm(client, unknown, guess))
    clock.advance(minutes=10, seconds=1)
    expired = [outcome(confirm(client, email, guess)) for email in (user.email, unknown, never_asked)]
    assert expired[0] == expired[1] == expired[2] and expired[0][:2] == (410, "expired")
    assert login(client, user.username, PASSWORD).status_code == 200  # the password never changed


def test_requests_beyond_the_window_are_dropped_silently(bank, client) -> None:
    user = make_user(bank)
    clock.freeze(utcnow())
    bodies = {ask(client, user.email).get_data() for _ in range(otp.MAX_CODES_PER_WINDOW + 2)}
    assert len(bodies) == 1
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == otp.MAX_CODES_PER_WINDOW
    # The last code sent still works: dropped requests did not supersede it.
    assert confirm(client, user.email, emailed_code(bank, user)).status_code == 204


def test_weak_new_password_keeps_the_code(bank, client) -> None:
    user = make_user(bank, username=f"walt{uuid.uuid4().hex[:4]}")
    ask(client, user.email)
    code = emailed_code(bank, user)
    for weak in ("short", "password123", f"my-{user.username}-secret"):
        answer = confirm(client, user.email, code, weak)
        assert outcome(answer)[:2] == (422, "weak_password"), weak
        assert "new_password" in answer.get_json()["errors"]
    with bank.db.transaction() as s:
        assert s.scalar(select(OneTimeCode.attempts).where(OneTimeCode.user_id == user.id)) == 0
    assert confirm(client, user.email, code).status_code == 204


def test_reset_clears_a_lockout(bank, client) -> None:
    user = make_user(bank)
    for _ in range(bank.settings.max_failed_logins):
        login(client, user.username, "not-the-password-1")
    assert login(client, user.username, PASSWORD).status_code == 429
    ask(client, user.email)
    assert confirm(client, user.email, emailed_code(bank, user)).status_code == 204
    assert login(client, user.username, NEW_PASSWORD).status_code == 200


def test_inactive_accounts_get_no_code(bank, client) -> None:
    user = make_user(bank, status="suspended")
    assert ask(client, user.email).status_code == 202
    assert ask(client, "no-such-person@example.com").status_code == 202
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
    suspended = outcome(confirm(client, user.email, "123456"))
    assert suspended == outcome(confirm(client, "no-such-person@example.com", "123456"))
    assert suspended[:3] == (422, "invalid_code", 4)


def test_walk_in_customer_without_password_sets_one(bank, client) -> None:
    user = make_user(bank)
    with bank.db.transaction() as s:
        s.get(User, user.id).password_hash = None
    ask(client, user.email)
    assert confirm(client, user.email, emailed_code(bank, user)).status_code == 204
    assert login(client, user.username, NEW_PASSWORD).status_code == 200


def test_bad_input_is_refused_before_anything(bank, client) -> None:
    user = make_user(bank)
    for body in ({}, {"email": "not-an-email"}, {"email": user.email, "extra": 1}, {"email": ["x"]}):
        assert client.post("/api/v1/auth/password-reset", json=body).status_code == 422
    for body in (
        {"email": user.email, "code": "12345", "new_password": NEW_PASSWORD},
        {"email": user.email, "code": "123456"},
        {"email": user.email, "code": 123456, "new_password": NEW_PASSWORD},
    ):
        assert client.post("/api/v1/auth/password-reset/confirm", json=body).status_code == 422
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OneTimeCode)) == 0
    assert timedelta(minutes=10) == otp.CODE_TTL
