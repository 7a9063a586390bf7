"""Large transfers wait for a one-time code bound to their amount and payee (real PostgreSQL)."""

from __future__ import annotations

import time

from sqlalchemy import select

from core.clock import clock
from core.models import Job, Notification, OutboxMessage, Transfer
from core.transfers import post_transfer_jobs
from core.transfers.confirmation import expire_unconfirmed
from tests.support import auth_headers, make_user, open_account


def setup(bank, client, balance=5_000_00):
    alice, bob = make_user(bank, phone=None), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", balance), open_account(bank, bob, "EUR")
    return alice, bob, source, destination, auth_headers(client, alice)


def send(client, headers, source, destination, amount, key):
    body = {"source_account_id": source, "destination_account_id": destination, "amount": amount, "currency": "EUR"}
    return client.post("/api/v1/transfers", json=body, headers={**headers, "Idempotency-Key": key})


def code_for(bank, transfer_id):
    with bank.db.transaction() as s:
        notes = [n for n in s.scalars(select(Notification).where(Notification.template == "transfer_confirmation"))]
    [note] = [n for n in notes if n.context and n.context.get("amount")]
    return note.context["code"], note


def _outbox_for(bank, message_id):
    with bank.db.transaction() as s:
        return s.scalar(select(OutboxMessage.id).where(OutboxMessage.job_id == message_id))


def resource(client, headers, job):
    return client.get(job["links"]["resource"], headers=headers).get_json()


def test_below_threshold_is_not_held(bank, client):
    _, _, source, destination, headers = setup(bank, client)
    job = send(client, headers, source, destination, "999.99", "small").get_json()
    assert job["status"] == "queued"


def test_large_transfer_waits_for_the_right_code_then_posts(bank, client):
    alice, _, source, destination, headers = setup(bank, client)
    job = send(client, headers, source, destination, "1000.00", "big").get_json()
    assert job["status"] == "awaiting_confirmation"
    transfer = resource(client, headers, job)
    assert transfer["status"] == "awaiting_confirmation"
    with bank.db.transaction() as s:
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.job_id == job["id"])) is None
    code, note = code_for(bank, transfer["id"])
    deadline = time.monotonic() + 10  # the code's email is published right after the answer, not by the relay
    while time.monotonic() < deadline and _outbox_for(bank, note.id):
        time.sleep(0.05)
    assert not _outbox_for(bank, note.id)
    assert note.user_id == alice.id and note.channel == "email" and note.context["payee"].startswith("account ending")
    assert post_transfer_jobs(bank.db, job["id"]).posted == []  # nothing moves before the code

    confirmed = client.post(f"{job['links']['resource']}/confirm", json={"code": code}, headers=headers)
    assert confirmed.status_code == 202 and confirmed.get_json()["status"] == "queued"
    assert confirmed.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert post_transfer_jobs(bank.db, job["id"]).posted == [job["id"]]
    assert resource(client, headers, job)["status"] == "posted"
    again = client.post(f"{job['links']['resource']}/confirm", json={"code": code}, headers=headers)
    assert again.status_code == 409 and again.get_json()["code"] == "not_confirmable"


def test_five_wrong_codes_fail_the_transfer(bank, client):
    _, _, source, destination, headers = setup(bank, client)
    job = send(client, headers, source, destination, "2500.00", "guess").get_json()
    code, _ = code_for(bank, None)
    wrong = "000000" if code != "000000" else "111111"
    path = f"{job['links']['resource']}/confirm"
    for remaining in (4, 3, 2, 1, 0):
        answer = client.post(path, json={"code": wrong}, headers=headers)
        assert answer.status_code == 422 and answer.get_json()["code"] == "invalid_code"
        assert answer.get_json()["attempts_remaining"] == remaining
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=headers).get_json()["error"]["code"] == "confirmation_failed"
    late = client.post(path, json={"code": code}, headers=headers)
    assert late.status_code == 409
    assert resource(client, headers, job)["failure_code"] == "confirmation_failed"


def test_unconfirmed_transfer_expires_even_if_nobody_asks(bank, client):
    _, _, source, destination, headers = setup(bank, client)
    job = send(client, headers, source, destination, "1500.00", "slow").get_json()
    code, _ = code_for(bank, None)
    clock.advance(minutes=9)
    assert expire_unconfirmed(bank) == 0
    clock.advance(minutes=1, seconds=1)
    assert expire_unconfirmed(bank) == 1
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).get_json()
    assert done["status"] == "failed" and done["error"]["code"] == "confirmation_expired"
    assert client.post(f"{job['links']['resource']}/confirm", json={"code": code}, headers=headers).status_code == 409


def test_confirming_after_the_window_fails_at_once(bank, client):
    _, _, source, destination, headers = setup(bank, client)
    job = send(client, headers, source, destination, "1500.00", "late").get_json()
    code, _ = code_for(bank, None)
    clock.advance(minutes=10, seconds=1)
    answer = client.post(f"{job['links']['resource']}/confirm", json={"code": code}, headers=headers)
    assert answer.status_code == 410 and answer.get_json()["code"] == "confirmation_expired"
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=headers).get_json()["status"] == "failed"


def test_a_code_is_bound_to_its_own_transfer(bank, client):
    _, _, source, destination, headers = setup(bank, client)
    first = send(client, headers, source, destination, "1200.00", "one").get_json()
    code_one, _ = code_for(bank, None)
    clock.advance(seconds=1)
    second = send(client, headers, source, destination, "1300.00", "two").get_json()
    answer = client.post(f"{second['links']['resource']}/confirm", json={"code": code_one}, headers=headers)
    assert answer.status_code == 422 and answer.get_json()["code"] == "invalid_code"
    assert client.get(f"/api/v1/jobs/{first['id']}", headers=headers).get_json()["status"] == "awaiting_confirmation"


def test_others_cannot_confirm_and_the_holder_can_cancel(bank, client):
    _, bob, source, destination, headers = setup(bank, client)
    job = send(client, headers, source, destination, "1000.00", "cancel-me").get_json()
    code, _ = code_for(bank, None)
    other = client.post(f"{job['links']['resource']}/confirm", json={"code": code}, headers=auth_headers(client, bob))
    assert other.status_code == 404
    bad = client.post(f"{job['links']['resource']}/confirm", json={"code": "12ab56"}, headers=headers)
    assert bad.status_code == 422
    cancelled = client.post(f"{job['links']['resource']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    with bank.db.transaction() as s:
        assert s.get(Job, job["id"]).status == "cancelled"
        assert s.scalar(select(Transfer.status).where(Transfer.job_id == job["id"])) == "cancelled"
