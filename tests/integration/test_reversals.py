"""Reversals: staff undo a posted transfer with a new opposite posting, at most once, on real PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

from sqlalchemy import func, select

from core.ledger import check_ledger
from core.models import Account, Entry, Job, Transfer
from core.transfers import post_transfer_jobs
from tests.support import accept_transfer, auth_headers, make_user, open_account


def balances(bank, *ids):
    with bank.db.transaction() as s:
        found = {a.id: a.balance for a in s.scalars(select(Account).where(Account.id.in_(ids)))}
    return [found[i] for i in ids]


def job(bank, job_id):
    with bank.db.transaction() as s:
        return s.get(Job, job_id)


def posted_transfer(bank, amount="30.00"):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    accepted = accept_transfer(bank, alice, source, destination, amount)
    assert post_transfer_jobs(bank.db, accepted.body["id"], batch_size=1).posted
    return alice, bob, source, destination, accepted.body["links"]["resource"].rsplit("/", 1)[1]


def reverse(client, headers, transfer_id, key=None, reason="Duplicate payment"):
    return client.post(
        f"/api/v1/transfers/{transfer_id}/reverse",
        json={"reason": reason},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def test_a_reversal_posts_the_opposite_and_links_both_ways(bank, client):
    alice, _, source, destination, transfer_id = posted_transfer(bank)
    teller = auth_headers(client, make_user(bank, role="teller"))
    accepted = reverse(client, teller, transfer_id)
    assert accepted.status_code == 202, accepted.get_json()
    body = accepted.get_json()
    assert body["kind"] == "reversal" and body["status"] == "queued"
    assert post_transfer_jobs(bank.db, body["id"], batch_size=1).posted == [body["id"]]

    reversal_id = body["links"]["resource"].rsplit("/", 1)[1]
    original = client.get(f"/api/v1/transfers/{transfer_id}", headers=teller).get_json()
    reversal = client.get(f"/api/v1/transfers/{reversal_id}", headers=teller).get_json()
    assert original["status"] == "posted" and original["reversed_by"] == reversal_id
    assert reversal["reverses"] == transfer_id and reversal["status"] == "posted"
    assert (reversal["source_account_id"], reversal["destination_account_id"]) == (destination, source)
    assert reversal["amount"] == "30.00" and reversal["description"] == "Reversal: Duplicate payment"
    # The customer sees the link on their own transfer too.
    mine = client.get(f"/api/v1/transfers/{transfer_id}", headers=auth_headers(client, alice)).get_json()
    assert mine["reversed_by"] == reversal_id
    assert balances(bank, source, destination) == [100_00, 0]
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.account_id == destination)) == 2
    assert check_ledger(bank.db)["ok"]

    again = reverse(client, teller, transfer_id)
    assert again.status_code == 409 and again.get_json()["code"] == "already_reversed"
    of_reversal = reverse(client, teller, reversal_id)
    assert of_reversal.status_code == 409 and of_reversal.get_json()["code"] == "not_reversible"


def test_concurrent_reversal_requests_post_exactly_once(bank, app):
    _, _, source, destination, transfer_id = posted_transfer(bank)
    teller = auth_headers(app.test_client(), make_user(bank, role="teller"))
    keys = ["same-key"] * 4 + [f"key-{i}" for i in range(8)]
    barrier = threading.Barrier(len(keys))
    answers: list[tuple[int, dict]] = []

    def send(key: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = reverse(client, teller, transfer_id, key=key)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == len(keys)
    assert set(Counter(status for status, _ in answers)) <= {202, 409}, answers
    assert {b["code"] for status, b in answers if status == 409} <= {"already_reversed", "idempotency_key_in_use"}
    job_ids = {b["id"] for status, b in answers if status == 202}
    assert len(job_ids) == 1

    # Every accepted job delivered to two workers at once, then once more late.
    (job_id,) = job_ids
    reports: list = []
    workers = [threading.Thread(target=lambda: reports.append(post_transfer_jobs(bank.db, job_id))) for _ in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    reports.append(post_transfer_jobs(bank.db, job_id))
    assert sum(r.posted.count(job_id) for r in reports) == 1
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "reversal")) == 1
    assert balances(bank, source, destination) == [100_00, 0]
    assert check_ledger(bank.db)["ok"]


def test_a_reversal_fails_when_the_money_is_gone_and_may_be_tried_again(bank, client):
    _, bob, source, destination, transfer_id = posted_transfer(bank)
    carol_account = open_account(bank, make_user(bank), "EUR")
    spent = accept_transfer(bank, bob, destination, carol_account, "20.00")
    assert post_transfer_jobs(bank.db, spent.body["id"], batch_size=1).posted
    teller = auth_headers(client, make_user(bank, role="teller"))

    first = reverse(client, teller, transfer_id).get_json()
    assert post_transfer_jobs(bank.db, first["id"], batch_size=1).failed == [first["id"]]
    failed = job(bank, first["id"])
    assert (failed.status, failed.error_code) == ("failed", "insufficient_funds")
    assert balances(bank, source, destination) == [70_00, 10_00]
    assert client.get(f"/api/v1/transfers/{transfer_id}", headers=teller).get_json()["reversed_by"] is None

    open_deposit = client.post(
        "/api/v1/deposits",
        json={"account_id": destination, "amount": "20.00", "currency": "EUR"},
        headers={**teller, "Idempotency-Key": "refill"},
    ).get_json()
    assert post_transfer_jobs(bank.db, open_deposit["id"], batch_size=1).posted
    second = reverse(client, teller, transfer_id)
    assert second.status_code == 202
    assert post_transfer_jobs(bank.db, second.get_json()["id"], batch_size=1).posted
    assert balances(bank, source, destination) == [100_00, 0]
    assert check_ledger(bank.db)["ok"]


def test_a_frozen_account_refuses_the_reversal_at_posting(bank, client):
    _, _, _, destination, transfer_id = posted_transfer(bank)
    teller = auth_headers(client, make_user(bank, role="teller"))
    accepted = reverse(client, teller, transfer_id).get_json()
    assert client.post(f"/api/v1/accounts/{destination}/freeze", headers=teller).status_code == 200
    assert post_transfer_jobs(bank.db, accepted["id"], batch_size=1).failed
    assert job(bank, accepted["id"]).error_code == "account_frozen"
    refused = reverse(client, teller, transfer_id)
    assert refused.status_code == 422 and refused.get_json()["code"] == "account_frozen"


def test_deposits_reverse_too(bank, client):
    owner = make_user(bank)
    account = open_account(bank, owner, "EUR", 25_00)
    teller = auth_headers(client, make_user(bank, role="teller"))
    with bank.db.transaction() as s:
        deposit_id = s.scalar(select(Transfer.id).where(Transfer.kind == "deposit"))
    accepted = reverse(client, teller, deposit_id, reason="Counterfeit notes")
    assert accepted.status_code == 202
    assert post_transfer_jobs(bank.db, accepted.get_json()["id"], batch_size=1).posted
    assert balances(bank, account) == [0]
    assert check_ledger(bank.db)["ok"]


def test_who_may_reverse_what(bank, client):
    alice, _, _, destination, transfer_id = posted_transfer(bank)
    customer = auth_headers(client, alice)
    forbidden = reverse(client, customer, transfer_id)
    assert forbidden.status_code == 403
    teller = auth_headers(client, make_user(bank, role="teller"))
    no_key = client.post(f"/api/v1/transfers/{transfer_id}/reverse", json={"reason": "x"}, headers=teller)
    assert no_key.status_code == 400 and no_key.get_json()["code"] == "idempotency_key_required"
    for bad in ({}, {"reason": ""}, {"reason": "x" * 201}, {"reason": 5}, {"reason": "x", "extra": 1}):
        response = client.post(
            f"/api/v1/transfers/{transfer_id}/reverse", json=bad, headers={**teller, "Idempotency-Key": "bad"}
        )
        assert response.status_code == 422, bad
    missing = reverse(client, teller, str(uuid.uuid4()))
    assert missing.status_code == 404
    pending = accept_transfer(bank, alice, open_account(bank, alice, "EUR", 5_00), destination, "1.00")
    pending_id = pending.body["links"]["resource"].rsplit("/", 1)[1]
    not_posted = reverse(client, teller, pending_id)
    assert not_posted.status_code == 409 and not_posted.get_json()["code"] == "not_reversible"
    admin = auth_headers(client, make_user(bank, role="admin"))
    assert reverse(client, admin, transfer_id).status_code == 202
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "reversal")) == 1
