"""Rate limits (Flask-Limiter over the real Redis): floods of login, registration, reset and OTP requests get
429 problem documents with Retry-After; limits are per IP, per username and per user; Redis going away neither
fails requests nor lifts the limits."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import redis

from api import create_app
from core import password_reset
from core.bank import Bank
from tests.support import PASSWORD, auth_headers, make_user


@pytest.fixture(autouse=True)
def quick_floor(monkeypatch):
    monkeypatch.setattr(password_reset, "MIN_SECONDS", 0.0)


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def login(client, username, password=PASSWORD, ip="10.0.0.1"):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password}, **from_ip(ip))


def assert_limited(answer) -> None:
    assert answer.status_code == 429, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    body = answer.get_json()
    assert body["code"] == "rate_limited" and body["status"] == 429 and body["type"].endswith("/rate_limited")
    assert 1 <= int(answer.headers["Retry-After"]) <= 60


def test_login_flood_per_ip(app, bank, client) -> None:
    app.config["BANKQ_RATE_LIMIT_LOGIN"] = "5 per minute"
    users = [make_user(bank) for _ in range(6)]
    answers = [login(client, u.username, ip="10.0.0.1") for u in users]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert_limited(answers[5])
    assert login(client, users[5].username, ip="10.0.0.2").status_code == 200  # another address is not affected


def test_login_flood_per_username_from_many_ips(app, bank, client) -> None:
    app.config["BANKQ_RATE_LIMIT_LOGIN_USERNAME"] = "3 per minute"
    user, other = make_user(bank), make_user(bank)
    answers = [login(client, user.username.upper(), "wrong-password-9", ip=f"10.1.0.{i}") for i in range(4)]
    assert [a.status_code for a in answers[:3]] == [401] * 3
    assert_limited(answers[3])
    assert_limited(login(client, user.username, ip="10.1.1.1"))  # even with the right password, from anywhere
    assert login(client, other.username, ip="10.1.0.1").status_code == 200


def test_default_login_limits_are_generous(app, bank, client) -> None:
    user = make_user(bank)
    assert app.config["BANKQ_RATE_LIMIT_LOGIN"] == "60 per minute"
    assert app.config["BANKQ_RATE_LIMIT_LOGIN_USERNAME"] == "20 per minute"
    for _ in range(6):
        assert login(client, user.username, ip="10.2.0.1").status_code == 200


def test_register_flood(app, bank, client) -> None:
    app.config["BANKQ_RATE_LIMIT_REGISTER"] = "2 per minute"

    def register():
        name = f"reg{uuid.uuid4().hex[:8]}"
        body = {"username": name, "email": f"{name}@example.com", "password": "violet-harbour-19", "full_name": "R"}
        return client.post("/api/v1/auth/register", json=body, **from_ip("10.3.0.1"))

    assert [register().status_code for _ in range(2)] == [201, 201]
    assert_limited(register())


def test_password_reset_floods(app, bank, client) -> None:
    app.config["BANKQ_RATE_LIMIT_PASSWORD_RESET"] = "3 per minute"
    user = make_user(bank)
    asks = [
        client.post("/api/v1/auth/password-reset", json={"email": user.email}, **from_ip("10.4.0.1")) for _ in range(4)
    ]
    assert [a.status_code for a in asks[:3]] == [202] * 3
    assert_limited(asks[3])
    body = {"email": user.email, "code": "000000", "new_password": "quiet-lantern-meadow-42"}
    confirms = [client.post("/api/v1/auth/password-reset/confirm", json=body, **from_ip("10.4.0.2")) for _ in range(4)]
    assert all(c.status_code in (410, 422) for c in confirms[:3])
    assert_limited(confirms[3])


def test_otp_request_flood_per_user(app, bank, client) -> None:
    app.config["BANKQ_RATE_LIMIT_OTP"] = "2 per minute"
    alice, bob = make_user(bank), make_user(bank)
    alice_headers, bob_headers = auth_headers(client, alice), auth_headers(client, bob)

    def ask(headers, ip):
        return client.post(
            "/api/v1/otp",
            json={"purpose": "login", "channel": "email"},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            **from_ip(ip),
        )

    assert [ask(alice_headers, f"10.5.0.{i}").status_code for i in range(2)] == [202, 202]
    assert_limited(ask(alice_headers, "10.5.0.9"))  # per user, whatever the address
    assert ask(bob_headers, "10.5.0.1").status_code == 202
    forged = {"Authorization": "Bearer not-a-token"}
    assert ask(forged, "10.5.0.1").status_code == 401  # no valid token: counted by IP, answered 401


def test_otp_verify_flood_per_ip(app, bank, client) -> None:
    app.config["BANKQ_RATE_LIMIT_OTP_VERIFY"] = "3 per minute"
    user = make_user(bank)
    headers = auth_headers(client, user)
    otp_id = client.post(
        "/api/v1/otp", json={"purpose": "login", "channel": "email"}, headers={**headers, "Idempotency-Key": "k1"}
    ).get_json()["result"]["otp_id"]
    tries = [
        client.post(f"/api/v1/otp/{otp_id}/verify", json={"code": "000000"}, headers=headers, **from_ip("10.6.0.1"))
        for _ in range(4)
    ]
    assert all(t.status_code in (200, 422) for t in tries[:3])
    assert_limited(tries[3])


def test_counters_live_in_redis(app, bank, client) -> None:
    user = make_user(bank)
    login(client, user.username, ip="10.7.0.1")
    keys = redis.Redis.from_url(bank.settings.redis_url).keys("*bankq-limits*")
    assert any(b"10.7.0.1" in k for k in keys), keys


def test_redis_down_neither_fails_requests_nor_lifts_limits(bank, settings) -> None:
    dead = dataclasses.replace(settings, redis_url="redis://127.0.0.1:9/0")  # nothing listens on the discard port
    down = Bank(dead, pool_size=2)
    try:
        app = create_app(bank=down)
        app.config.update(TESTING=True, BANKQ_RATE_LIMIT_LOGIN="3 per minute")
        client = app.test_client()
        users = [make_user(bank) for _ in range(4)]
        answers = [login(client, u.username, ip="10.8.0.1") for u in users]
        assert [a.status_code for a in answers[:3]] == [200] * 3
        assert_limited(answers[3])  # counted in memory meanwhile
        reset = client.post("/api/v1/auth/password-reset", json={"email": "x@example.com"}, **from_ip("10.8.0.2"))
        assert reset.status_code == 202
    finally:
        down.db.dispose()
