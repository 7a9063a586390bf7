"""The accept -> post path through the HTTP API against real PostgreSQL and Redis."""

from __future__ import annotations

from core.transfers import post_transfer_jobs
from tests.support import auth_headers, make_user, open_account


def test_transfer_is_accepted_then_posted_once(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source = open_account(bank, alice, "EUR", 10_000)
    destination = open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice, **{"Idempotency-Key": "t-1"})

    accepted = client.post(
        "/api/v1/transfers",
        headers=headers,
        json={"source_account_id": source, "destination_account_id": destination, "amount": "12.34", "currency": "EUR"},
    )
    assert accepted.status_code == 202, accepted.get_json()
    job = accepted.get_json()
    assert accepted.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued"

    assert post_transfer_jobs(bank.db, job["id"]).posted == [job["id"]]
    assert post_transfer_jobs(bank.db, job["id"]).posted == []

    done = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).get_json()
    assert done["status"] == "succeeded"
    transfer = client.get(done["links"]["resource"], headers=headers).get_json()
    assert transfer["status"] == "posted" and transfer["amount"] == "12.34"
    assert client.get(f"/api/v1/accounts/{source}", headers=headers).get_json()["balance"] == "87.66"
