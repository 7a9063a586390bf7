"""Auth over HTTP: registration, lockout, refresh, logout revocation, roles."""

from __future__ import annotations

from sqlalchemy import select

from core.clock import clock
from core.models import User
from tests.support import PASSWORD, auth_headers, make_user

REGISTER = {"username": "dora", "email": "dora@example.com", "password": "violet-harbour-19", "full_name": "Dora D"}


def login(client, username, password=PASSWORD):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_register_login_me(bank, client):
    created = client.post("/api/v1/auth/register", json=REGISTER)
    assert created.status_code == 201
    user = created.get_json()
    assert user["role"] == "customer" and user["kyc_status"] == "unverified" and "password" not in user
    tokens = login(client, "dora", REGISTER["password"]).get_json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.get_json()["id"] == user["id"]
    with bank.db.transaction() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "dora"))
    assert stored.startswith("$argon2id$") and REGISTER["password"] not in stored


def test_register_conflicts_and_weak_passwords(bank, client):
    assert client.post("/api/v1/auth/register", json=REGISTER).status_code == 201
    again = client.post("/api/v1/auth/register", json={**REGISTER, "email": "other@example.com"})
    assert (again.status_code, again.get_json()["code"]) == (409, "username_taken")
    again = client.post("/api/v1/auth/register", json={**REGISTER, "username": "dora2"})
    assert (again.status_code, again.get_json()["code"]) == (409, "email_taken")
    for weak in ("short1!", "password123", "1234567890"):
        answer = client.post(
            "/api/v1/auth/register", json={**REGISTER, "username": "eve", "email": "e@example.com", "password": weak}
        )
        assert answer.status_code == 422 and answer.get_json()["code"] == "weak_password", weak
    bad_email = client.post("/api/v1/auth/register", json={**REGISTER, "username": "fay", "email": "not-an-email"})
    assert bad_email.status_code == 422 and "email" in bad_email.get_json()["errors"]


def test_unknown_user_and_wrong_password_answer_the_same(bank, client):
    make_user(bank, username="gina")
    wrong, unknown = login(client, "gina", "wrong-password-1"), login(client, "nobody-here", "wrong-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["code"] == "invalid_credentials"


def test_lockout_after_five_failures_even_with_right_password(bank, client):
    make_user(bank, username="hank")
    for _ in range(5):
        assert login(client, "hank", "wrong-password-1").status_code == 401
    locked = login(client, "hank")
    assert locked.status_code == 429 and locked.get_json()["code"] == "account_locked"
    assert int(locked.headers["Retry-After"]) > 0
    clock.advance(seconds=bank.settings.lockout_seconds + 1)
    assert login(client, "hank").status_code == 200


def test_success_resets_the_failure_count(bank, client):
    make_user(bank, username="ivan")
    for _ in range(4):
        login(client, "ivan", "wrong-password-1")
    assert login(client, "ivan").status_code == 200
    for _ in range(4):
        login(client, "ivan", "wrong-password-1")
    assert login(client, "ivan").status_code == 200


def test_refresh_and_logout_revoke_both_tokens(bank, client):
    make_user(bank, username="june")
    tokens = login(client, "june").get_json()
    access = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert client.get("/api/v1/auth/me", headers=refresh).status_code == 401  # a refresh token is not an access token
    renewed = client.post("/api/v1/auth/refresh", headers=refresh)
    assert renewed.status_code == 200
    new_access = {"Authorization": f"Bearer {renewed.get_json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=new_access).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=access).status_code == 204
    after = client.get("/api/v1/auth/me", headers=access)
    assert after.status_code == 401 and after.get_json()["code"] == "token_revoked"
    assert client.post("/api/v1/auth/refresh", headers=refresh).status_code == 401


def test_expired_and_forged_tokens_are_refused(bank, client):
    user = make_user(bank)
    headers = auth_headers(client, user)
    # flask-jwt-extended checks expiry against the real clock, so forge an expired token instead of waiting.
    import jwt as pyjwt

    expired = pyjwt.encode(
        {"sub": user.id, "exp": 1, "iat": 0, "nbf": 0, "jti": "x", "type": "access", "tv": 0},
        bank.settings.secret_key,
        algorithm="HS256",
    )
    answer = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 401 and answer.get_json()["code"] == "token_expired"
    claims = {"sub": user.id, "jti": "y", "type": "access", "tv": 0}
    forged = pyjwt.encode(claims, "not-our-secret-but-long-enough-for-hs256-0123", algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert client.get("/api/v1/auth/me").get_json()["code"] == "token_missing"
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200


def test_suspended_user_cannot_log_in_or_use_old_tokens(bank, client):
    user = make_user(bank, username="kate")
    headers = auth_headers(client, user)
    with bank.db.transaction() as s:
        s.get(User, user.id).status = "suspended"
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    answer = login(client, "kate")
    assert answer.status_code == 403 and answer.get_json()["code"] == "account_suspended"


def test_admin_creates_staff_and_roles_are_enforced(bank, client):
    admin, customer = make_user(bank, role="admin"), make_user(bank)
    teller = {
        "username": "teller1",
        "email": "t1@example.com",
        "password": "amber-lantern-88",
        "full_name": "T One",
        "role": "teller",
    }
    denied = client.post("/api/v1/admin/users", json=teller, headers=auth_headers(client, customer))
    assert denied.status_code == 403
    created = client.post("/api/v1/admin/users", json=teller, headers=auth_headers(client, admin))
    assert created.status_code == 201 and created.get_json()["role"] == "teller"
    ledger = client.get("/api/v1/admin/ledger/check", headers=auth_headers(client, admin))
    assert ledger.status_code == 200 and ledger.get_json()["ok"] is True
    assert client.get("/api/v1/admin/ledger/check", headers=auth_headers(client, customer)).status_code == 403


def test_admin_bootstrap_from_settings(bank):
    from dataclasses import replace

    from core.users import authenticate, ensure_admin

    settings = replace(bank.settings, admin_username="root-admin", admin_password="granite-meadow-31")
    ensure_admin(bank.db, settings)
    ensure_admin(bank.db, settings)
    assert authenticate(bank.db, settings, "root-admin", "granite-meadow-31").role == "admin"


def test_revocations_survive_a_redis_restart_and_outage(bank, client):
    import redis

    from core.revocation import DatabaseRevocations, RedisRevocations

    make_user(bank, username="lena")
    tokens = login(client, "lena").get_json()
    access = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=access).status_code == 204
    redis.Redis.from_url(bank.settings.redis_url).flushdb()  # Redis keeps nothing on disk: a restart is this
    assert client.get("/api/v1/auth/me", headers=access).status_code == 401
    from flask_jwt_extended import decode_token

    with client.application.app_context():
        jti = decode_token(tokens["access_token"], allow_expired=True)["jti"]
    unreachable = RedisRevocations("redis://127.0.0.1:1/0", DatabaseRevocations(bank.db))
    assert unreachable.is_revoked(jti) is True
    assert unreachable.is_revoked("never-revoked") is False


def test_a_process_sees_a_revocation_made_by_another_within_a_second_and_asks_the_store_when_its_copy_is_stale(
    bank,
):
    import time
    from datetime import UTC, datetime, timedelta

    from core.db import Database
    from core.revocation import DatabaseRevocations, LocalRevocations

    class Asked:
        """The store behind the copy, counting how often a check had to ask it."""

        def __init__(self) -> None:
            self.asked = 0

        def is_revoked(self, jti: str) -> bool:
            self.asked += 1
            return durable.is_revoked(jti)

        def revoke(self, jti: str, expires_at: datetime) -> None:
            durable.revoke(jti, expires_at)

    durable, store = DatabaseRevocations(bank.db), Asked()
    here, there = LocalRevocations(store, durable), LocalRevocations(store, durable)
    assert not here.is_revoked("j-1") and not there.is_revoked("j-1")
    time.sleep(0.5)  # both copies loaded
    asked = store.asked
    there.revoke("j-1", datetime.now(UTC) + timedelta(minutes=5))
    assert there.is_revoked("j-1")  # at once where it was made
    started = time.monotonic()
    while not here.is_revoked("j-1"):
        assert time.monotonic() - started < 1.0
        time.sleep(0.01)
    assert store.asked == asked  # answered from memory: no round trip per check

    # A copy that cannot refresh (its database is gone) is never trusted: each check asks the store.
    gone = DatabaseRevocations(Database("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    stale = LocalRevocations(durable, gone)
    assert stale.is_revoked("j-1") is True and stale.is_revoked("j-2") is False
    time.sleep(0.5)
    assert stale.is_revoked("j-1") is True
