"""Accounts, statements and transfer rules over HTTP, on real PostgreSQL and Redis."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import redis
from sqlalchemy import func, select

from core import jobs, outbox
from core.clock import clock, utcnow
from core.models import Job, OutboxMessage
from core.transfers import post_transfer_jobs, release_due_scheduled
from tests.support import accept_transfer, auth_headers, make_user, open_account


def post(client, path, headers, body, key):
    return client.post(path, json=body, headers={**headers, "Idempotency-Key": key})


def transfer_body(source, destination, amount="10.00", currency="EUR", **extra):
    return {
        "source_account_id": source,
        "destination_account_id": destination,
        "amount": amount,
        "currency": currency,
        **extra,
    }


def test_accounts_are_private_and_paginated(bank, client):
    alice, bob, teller = make_user(bank), make_user(bank), make_user(bank, role="teller")
    a_headers, b_headers, t_headers = (auth_headers(client, u) for u in (alice, bob, teller))
    mine = [
        client.post("/api/v1/accounts", json={"currency": c, "type": "checking"}, headers=a_headers).get_json()
        for c in ("EUR", "USD", "JPY")
    ]
    assert [a["balance"] for a in mine] == ["0.00", "0.00", "0"]
    assert all(a["status"] == "active" and a["owner_id"] == alice.id for a in mine)
    page = client.get("/api/v1/accounts?limit=2", headers=a_headers).get_json()
    rest = client.get(f"/api/v1/accounts?limit=2&cursor={page['next_cursor']}", headers=a_headers).get_json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {a["id"] for a in page["items"] + rest["items"]} == {a["id"] for a in mine}
    assert client.get("/api/v1/accounts", headers=b_headers).get_json()["items"] == []
    hidden = client.get(f"/api/v1/accounts/{mine[0]['id']}", headers=b_headers)
    assert hidden.status_code == 404 and hidden.get_json()["code"] == "account_not_found"
    assert client.get(f"/api/v1/accounts/{mine[0]['id']}/entries", headers=b_headers).status_code == 404
    staff_view = client.get(f"/api/v1/accounts?owner_id={alice.id}", headers=t_headers).get_json()
    assert len(staff_view["items"]) == 3
    for_other = client.post(
        "/api/v1/accounts", json={"currency": "EUR", "type": "savings", "owner_id": bob.id}, headers=a_headers
    )
    assert for_other.status_code == 403
    by_teller = client.post(
        "/api/v1/accounts", json={"currency": "EUR", "type": "savings", "owner_id": bob.id}, headers=t_headers
    )
    assert by_teller.status_code == 201 and by_teller.get_json()["owner_id"] == bob.id


def test_statement_is_newest_first_with_cursor(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice)
    for i in range(3):
        job = post(client, "/api/v1/transfers", headers, transfer_body(source, destination, f"{i + 1}.00"), f"k{i}")
        post_transfer_jobs(bank.db, job.get_json()["id"])
    first = client.get(f"/api/v1/accounts/{source}/entries?limit=2", headers=headers).get_json()
    second = client.get(
        f"/api/v1/accounts/{source}/entries?limit=2&cursor={first['next_cursor']}", headers=headers
    ).get_json()
    lines = first["items"] + second["items"]
    assert [e["amount"] for e in lines] == ["-3.00", "-2.00", "-1.00", "100.00"]
    assert [e["balance_after"] for e in lines] == ["94.00", "97.00", "99.00", "100.00"]
    assert second["next_cursor"] is None


def test_synchronous_checks(bank, client):
    alice, bob, mallory = make_user(bank), make_user(bank), make_user(bank)
    eur, usd = open_account(bank, alice, "EUR", 50_00), open_account(bank, alice, "USD", 50_00)
    bob_eur = open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice)
    cases = [
        (transfer_body(eur, usd), 422, "currency_mismatch"),
        (transfer_body(eur, bob_eur, currency="USD"), 422, "currency_mismatch"),
        (transfer_body(eur, eur), 422, "same_account"),
        (transfer_body(eur, "no-such-account"), 404, "account_not_found"),
        (transfer_body("no-such-account", bob_eur), 404, "account_not_found"),
    ]
    for i, (body, status, code) in enumerate(cases):
        answer = post(client, "/api/v1/transfers", headers, body, f"sync-{i}")
        assert (answer.status_code, answer.get_json()["code"]) == (status, code), body
    stolen = post(client, "/api/v1/transfers", auth_headers(client, mallory), transfer_body(eur, bob_eur), "steal")
    assert stolen.status_code == 404
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "transfer")) == 0


def test_kyc_gate(bank, client):
    unverified, bob = make_user(bank, kyc="unverified"), make_user(bank)
    source, destination = open_account(bank, unverified, "EUR", 10_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, unverified)
    refused = post(client, "/api/v1/transfers", headers, transfer_body(source, destination), "kyc-1")
    assert (refused.status_code, refused.get_json()["code"]) == (403, "kyc_required")
    original = bank.settings
    bank.settings = replace(original, require_kyc=False)
    try:
        assert (
            post(client, "/api/v1/transfers", headers, transfer_body(source, destination), "kyc-2").status_code == 202
        )
    finally:
        bank.settings = original


def test_frozen_accounts_neither_send_nor_receive(bank, client):
    alice, bob, teller = make_user(bank), make_user(bank), make_user(bank, role="teller")
    source, destination = open_account(bank, alice, "EUR", 10_00), open_account(bank, bob, "EUR")
    headers, t_headers = auth_headers(client, alice), auth_headers(client, teller)
    pending = post(client, "/api/v1/transfers", headers, transfer_body(source, destination), "before-freeze")
    assert client.post(f"/api/v1/accounts/{source}/freeze", headers=headers).status_code == 403
    frozen = client.post(f"/api/v1/accounts/{destination}/freeze", headers=t_headers)
    assert frozen.status_code == 200 and frozen.get_json()["status"] == "frozen"
    refused = post(client, "/api/v1/transfers", headers, transfer_body(source, destination), "after-freeze")
    assert (refused.status_code, refused.get_json()["code"]) == (422, "account_frozen")
    # Accepted before the freeze, posted after it: the worker refuses it.
    post_transfer_jobs(bank.db, pending.get_json()["id"])
    job = client.get(f"/api/v1/jobs/{pending.get_json()['id']}", headers=headers).get_json()
    assert job["status"] == "failed" and job["error"]["code"] == "account_frozen"
    assert client.post(f"/api/v1/accounts/{destination}/unfreeze", headers=t_headers).get_json()["status"] == "active"


def test_insufficient_funds_fails_the_job(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 5_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice)
    job = post(client, "/api/v1/transfers", headers, transfer_body(source, destination, "5.01"), "too-much").get_json()
    post_transfer_jobs(bank.db, job["id"])
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=headers)
    assert "Retry-After" not in done.headers
    assert done.get_json()["status"] == "failed" and done.get_json()["error"]["code"] == "insufficient_funds"
    transfer = client.get(done.get_json()["links"]["resource"], headers=headers).get_json()
    assert transfer["status"] == "failed" and transfer["failure_code"] == "insufficient_funds"
    assert client.get(f"/api/v1/accounts/{source}", headers=headers).get_json()["balance"] == "5.00"


def test_deposits_and_withdrawals_are_staff_only_and_balanced(bank, client):
    alice, teller = make_user(bank), make_user(bank, role="teller")
    account = open_account(bank, alice, "JPY")
    t_headers, a_headers = auth_headers(client, teller), auth_headers(client, alice)
    body = {"account_id": account, "amount": "1000", "currency": "JPY"}
    assert post(client, "/api/v1/deposits", a_headers, body, "d0").status_code == 403
    deposit = post(client, "/api/v1/deposits", t_headers, body, "d1").get_json()
    post_transfer_jobs(bank.db, deposit["id"])
    withdrawal = post(client, "/api/v1/withdrawals", t_headers, {**body, "amount": "1500"}, "w1").get_json()
    post_transfer_jobs(bank.db, withdrawal["id"])
    assert (
        client.get(f"/api/v1/jobs/{withdrawal['id']}", headers=t_headers).get_json()["error"]["code"]
        == "insufficient_funds"
    )
    ok = post(client, "/api/v1/withdrawals", t_headers, {**body, "amount": "400"}, "w2").get_json()
    post_transfer_jobs(bank.db, ok["id"])
    assert client.get(f"/api/v1/accounts/{account}", headers=a_headers).get_json()["balance"] == "600"


def test_idempotency_replay_reuse_and_scope(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    bob_source = open_account(bank, bob, "EUR", 50_00)
    headers = auth_headers(client, alice)
    first = post(client, "/api/v1/transfers", headers, transfer_body(source, destination), "same")
    again = post(client, "/api/v1/transfers", headers, transfer_body(source, destination), "same")
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    reused = post(client, "/api/v1/transfers", headers, transfer_body(source, destination, "11.00"), "same")
    assert (reused.status_code, reused.get_json()["code"]) == (422, "idempotency_key_reused")
    missing = client.post("/api/v1/transfers", json=transfer_body(source, destination), headers=headers)
    assert (missing.status_code, missing.get_json()["code"]) == (400, "idempotency_key_required")
    other_user = post(
        client, "/api/v1/transfers", auth_headers(client, bob), transfer_body(bob_source, destination), "same"
    )
    assert other_user.status_code == 202 and other_user.get_json()["id"] != first.get_json()["id"]


def test_jobs_are_listed_per_user_and_hidden_from_others(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice)
    ids = [
        post(client, "/api/v1/transfers", headers, transfer_body(source, destination, "1.00"), f"j{i}").get_json()["id"]
        for i in range(3)
    ]
    post_transfer_jobs(bank.db, ids[0], batch_size=1)
    listed = client.get("/api/v1/jobs?kind=transfer&limit=2", headers=headers).get_json()
    more = client.get(f"/api/v1/jobs?kind=transfer&limit=2&cursor={listed['next_cursor']}", headers=headers).get_json()
    assert [j["id"] for j in listed["items"] + more["items"]] == ids[::-1]
    queued = client.get("/api/v1/jobs?status=queued", headers=headers).get_json()["items"]
    assert {j["id"] for j in queued} == set(ids[1:])
    pending = client.get(f"/api/v1/jobs/{ids[1]}", headers=headers)
    assert pending.headers["Retry-After"] == "1"
    bob_headers = auth_headers(client, bob)
    assert client.get(f"/api/v1/jobs/{ids[0]}", headers=bob_headers).status_code == 404
    assert client.get("/api/v1/jobs", headers=bob_headers).get_json()["items"] == []
    transfer_path = client.get(f"/api/v1/jobs/{ids[0]}", headers=headers).get_json()["links"]["resource"]
    assert client.get(transfer_path, headers=bob_headers).status_code == 404


def test_accepted_message_reaches_the_real_broker(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    broker = redis.Redis.from_url(bank.settings.redis_url)
    before, unsent = broker.llen("transfers"), outbox.pending(bank.db)
    post(client, "/api/v1/transfers", auth_headers(client, alice), transfer_body(source, destination), "to-broker")
    deadline = time.monotonic() + 10
    while broker.llen("transfers") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker.llen("transfers") == before + 1
    while outbox.pending(bank.db) != unsent and time.monotonic() < deadline:
        time.sleep(0.05)  # the row is deleted just after the broker took the message
    assert outbox.pending(bank.db) == unsent


def test_outbox_keeps_what_the_broker_refused_and_relay_sends_it(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")

    def broker_down(*_):
        raise ConnectionError("broker unreachable")

    refused = []

    def publish(db, messages):
        refused.extend(messages)
        outbox.publish(db, broker_down, messages)  # raises PublishFailed: the accept still succeeds

    bank.db.publisher = publish
    accepted = accept_transfer(bank, alice, source, destination, key="ob")
    assert not accepted.replayed and [m.job_id for m in refused] == [accepted.body["id"]]
    with bank.db.transaction() as s:
        [row] = s.scalars(select(OutboxMessage))
        assert (row.job_id, row.attempts) == (accepted.body["id"], 1) and "broker unreachable" in row.last_error
    sent = []
    clock.advance(seconds=120)
    outbox.relay(bank.db, lambda *m: sent.append(m))
    assert ("transfers.post", "transfers", accepted.body["id"]) in sent
    assert outbox.pending(bank.db) == 0


def test_a_job_relayed_after_an_outage_is_not_redriven_at_once(bank):
    """The re-drive clock starts when the relay sends the message: a job that waited out a long broker outage in
    the outbox is not sent a second time by the next re-drive tick."""
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    accepted = accept_transfer(bank, alice, source, destination, key="waited")
    clock.advance(seconds=300)  # the broker was down all this time
    sent = []
    assert outbox.relay(bank.db, lambda *m: sent.append(m)) == 1
    assert jobs.redrive_stuck(bank.db, older_than_seconds=60) == 0
    clock.advance(seconds=61)  # and if that message is lost too, re-drive still catches it
    assert jobs.redrive_stuck(bank.db, older_than_seconds=60) == 1
    assert [m[2] for m in sent] == [accepted.body["id"]]


def test_redrive_requeues_jobs_whose_message_was_lost(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    bank.db.publisher = lambda db, messages: outbox.publish(db, lambda *m: None, messages)  # then lost by the broker
    accepted = accept_transfer(bank, alice, source, destination, key="lost")
    bank.db.publisher = None  # the re-drive's message stays in the outbox, where this test looks for it
    assert outbox.pending(bank.db) == 0
    assert jobs.redrive_stuck(bank.db, older_than_seconds=60) == 0
    clock.advance(seconds=61)
    assert jobs.redrive_stuck(bank.db, older_than_seconds=60) == 1
    assert jobs.redrive_stuck(bank.db, older_than_seconds=60) == 0  # already has an outbox row
    with bank.db.transaction() as s:
        assert s.scalar(select(OutboxMessage.job_id)) == accepted.body["id"]


def test_scheduled_transfer_waits_then_posts_and_can_be_cancelled(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 50_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice)
    when = (utcnow() + timedelta(hours=1)).isoformat()
    job = post(
        client, "/api/v1/transfers", headers, transfer_body(source, destination, execute_at=when), "s1"
    ).get_json()
    transfer = client.get(job["links"]["resource"], headers=headers).get_json()
    assert transfer["status"] == "scheduled"
    assert outbox.pending(bank.db) == 0
    assert post_transfer_jobs(bank.db, job["id"]).posted == []
    assert release_due_scheduled(bank) == 0
    clock.advance(hours=1, seconds=1)
    assert release_due_scheduled(bank) == 1
    assert post_transfer_jobs(bank.db, job["id"]).posted == [job["id"]]
    assert client.get(job["links"]["resource"], headers=headers).get_json()["status"] == "posted"
    late = client.post(f"{job['links']['resource']}/cancel", headers=headers)
    assert (late.status_code, late.get_json()["code"]) == (409, "not_cancellable")

    clock.unfreeze()
    when = (utcnow() + timedelta(days=2)).isoformat()
    other = post(
        client, "/api/v1/transfers", headers, transfer_body(source, destination, execute_at=when), "s2"
    ).get_json()
    cancelled = client.post(f"{other['links']['resource']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert client.get(f"/api/v1/jobs/{other['id']}", headers=headers).get_json()["status"] == "cancelled"
    assert client.post(f"{other['links']['resource']}/cancel", headers=auth_headers(client, bob)).status_code == 404


def test_ops_endpoints(bank, client):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.get_json()
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.get_data(as_text=True)
    for name in ("bankq_http_requests_total", "bankq_jobs", "bankq_queue_depth"):
        assert name in text
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/api/v1/transfers" in spec["paths"]
    assert client.get("/api/v1/docs").status_code == 200
