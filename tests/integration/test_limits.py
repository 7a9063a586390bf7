"""Outgoing transfer limits per customer and currency, checked at posting on real PostgreSQL, race-free."""

from __future__ import annotations

import dataclasses
import queue
import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from core.clock import clock
from core.ledger import check_ledger
from core.limits import DefaultLimits, limits_of
from core.models import Account, Job, Transfer
from core.transfers import post_transfer_batch, post_transfer_jobs
from tests.support import accept_transfer, auth_headers, make_user, open_account


def set_limits(client, headers, customer_id, daily, monthly, currency="EUR"):
    return client.put(
        f"/api/v1/customers/{customer_id}/limits",
        json={"currency": currency, "daily": daily, "monthly": monthly},
        headers=headers,
    )


def job(bank, job_id):
    with bank.db.transaction() as s:
        return s.get(Job, job_id)


def send(bank, user, source, destination, amount, **kw):
    """Accept and post one transfer; its job."""
    job_id = accept_transfer(bank, user, source, destination, amount).body["id"]
    post_transfer_jobs(bank.db, job_id, batch_size=1, **kw)
    return job(bank, job_id)


def me_limits(client, user):
    return {v["currency"]: v for v in client.get("/api/v1/auth/me", headers=auth_headers(client, user)).get_json()
            ["limits"]}


def test_concurrent_transfers_from_several_accounts_never_exceed_the_daily_limit(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    first, second = open_account(bank, alice, "EUR", 1000_00), open_account(bank, alice, "EUR", 1000_00)
    payee = open_account(bank, bob, "EUR")
    staff = auth_headers(client, make_user(bank, role="teller"))
    assert set_limits(client, staff, alice.id, "100.00", "1000.00").status_code == 200

    job_ids = [accept_transfer(bank, alice, (first, second)[i % 2], payee, "15.00").body["id"] for i in range(12)]
    deliveries: queue.Queue[str | None] = queue.Queue()
    for job_id in job_ids * 2:  # every job delivered twice
        deliveries.put(job_id)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while (job_id := deliveries.get()) is not None:
                for _ in range(200):
                    if not post_transfer_jobs(bank.db, job_id, batch_size=rng.randint(1, 4)).own_job_busy:
                        break
                    time.sleep(0.01)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for _ in workers:
        deliveries.put(None)
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not errors, errors

    with bank.db.transaction() as s:
        outcomes = Counter((j.status, j.error_code) for j in s.scalars(select(Job).where(Job.id.in_(job_ids))))
        messages = set(s.scalars(select(Job.error_message).where(Job.error_code == "limit_exceeded")))
        paid = s.scalar(select(Account.balance).where(Account.id == payee))
    assert outcomes == {("succeeded", None): 6, ("failed", "limit_exceeded"): 6}
    assert paid == 90_00
    assert messages <= {
        "The transfer exceeds the remaining allowance: 10.00 EUR today, 910.00 EUR this month.",
        "The transfer exceeds the remaining allowance: 0.00 EUR today, 900.00 EUR this month.",
    }
    assert me_limits(client, alice)["EUR"] == {
        "currency": "EUR", "daily": "100.00", "monthly": "1000.00", "daily_remaining": "10.00",
        "monthly_remaining": "910.00",
    }
    assert check_ledger(bank.db)["ok"]


def test_the_monthly_limit_and_a_new_day_and_month(bank, client):
    clock.freeze(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    alice, bob = make_user(bank), make_user(bank)
    source, payee = open_account(bank, alice, "EUR", 1000_00), open_account(bank, bob, "EUR")
    staff = auth_headers(client, make_user(bank, role="admin"))
    assert set_limits(client, staff, alice.id, "100.00", "150.00").get_json() == {
        "currency": "EUR", "daily": "100.00", "monthly": "150.00", "daily_remaining": "100.00",
        "monthly_remaining": "150.00",
    }
    assert send(bank, alice, source, payee, "100.00").status == "succeeded"
    refused = send(bank, alice, source, payee, "0.01")
    assert (refused.status, refused.error_code) == ("failed", "limit_exceeded")
    assert "0.00 EUR today, 50.00 EUR this month" in refused.error_message

    clock.advance(days=1)  # 30 November: the day resets, the month does not
    assert me_limits(client, alice)["EUR"]["daily_remaining"] == "100.00"
    over_month = send(bank, alice, source, payee, "60.00")
    assert over_month.error_code == "limit_exceeded"
    assert "100.00 EUR today, 50.00 EUR this month" in over_month.error_message
    assert send(bank, alice, source, payee, "50.00").status == "succeeded"
    assert me_limits(client, alice)["EUR"]["monthly_remaining"] == "0.00"

    clock.advance(days=1)  # 1 December: a new month
    assert send(bank, alice, source, payee, "100.00").status == "succeeded"
    with bank.db.transaction() as s:
        assert s.scalar(select(Account.balance).where(Account.id == payee)) == 250_00


def test_batches_count_and_an_atomic_batch_over_the_limit_posts_nothing(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, payee = open_account(bank, alice, "EUR", 1000_00), open_account(bank, bob, "EUR")
    staff = auth_headers(client, make_user(bank, role="teller"))
    set_limits(client, staff, alice.id, "50.00", "500.00")
    headers = auth_headers(client, alice)
    items = [{"source_account_id": source, "destination_account_id": payee, "amount": a, "currency": "EUR"}
             for a in ("20.00", "20.00", "20.00", "10.00")]

    def batch(atomic):
        body = {"items": items, "atomic": atomic}
        key = {"Idempotency-Key": str(atomic)}
        response = client.post("/api/v1/transfers/batch", json=body, headers={**headers, **key})
        job_id = response.get_json()["id"]
        post_transfer_batch(bank.db, job_id)
        return job(bank, job_id)

    atomic = batch(True)
    assert (atomic.status, atomic.error_code) == ("failed", "batch_failed")
    assert [i["failure_code"] for i in atomic.result["items"]] == [
        "batch_failed", "batch_failed", "limit_exceeded", "batch_failed"]
    assert me_limits(client, alice)["EUR"]["daily_remaining"] == "50.00"

    independent = batch(False)
    assert [i["failure_code"] for i in independent.result["items"]] == [None, None, "limit_exceeded", None]
    assert me_limits(client, alice)["EUR"]["daily_remaining"] == "0.00"
    assert check_ledger(bank.db)["ok"]


def test_deposits_withdrawals_and_reversals_do_not_count(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, payee = open_account(bank, alice, "EUR", 500_00), open_account(bank, bob, "EUR")
    staff = auth_headers(client, make_user(bank, role="teller"))
    set_limits(client, staff, alice.id, "10.00", "10.00")
    set_limits(client, staff, bob.id, "10.00", "10.00")
    withdrawal = client.post(
        "/api/v1/withdrawals", json={"account_id": source, "amount": "300.00", "currency": "EUR"},
        headers={**staff, "Idempotency-Key": "w"},
    ).get_json()
    assert post_transfer_jobs(bank.db, withdrawal["id"], batch_size=1).posted
    paid = send(bank, alice, source, payee, "10.00")
    assert paid.status == "succeeded"
    reversal = client.post(
        f"/api/v1/transfers/{paid.result['transfer_id']}/reverse", json={"reason": "Mistake"},
        headers={**staff, "Idempotency-Key": "r"},
    ).get_json()
    assert post_transfer_jobs(bank.db, reversal["id"], batch_size=1).posted
    assert me_limits(client, bob)["EUR"]["daily_remaining"] == "10.00"
    assert me_limits(client, alice)["EUR"]["daily_remaining"] == "0.00"


def test_the_bank_default_applies_unless_staff_set_a_customers_own(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, payee = open_account(bank, alice, "EUR", 500_00), open_account(bank, bob, "EUR")
    defaults = DefaultLimits(daily=Decimal("50"), monthly=Decimal("400"))
    assert send(bank, alice, source, payee, "60.00", limits=defaults).error_code == "limit_exceeded"
    assert send(bank, alice, source, payee, "50.00", limits=defaults).status == "succeeded"
    settings = dataclasses.replace(bank.settings, daily_limit=Decimal("50"), monthly_limit=Decimal("400"))
    with bank.db.transaction() as s:
        user = s.get(type(alice), alice.id)
        assert limits_of(s, settings, user) == [{
            "currency": "EUR", "daily": "50.00", "monthly": "400.00", "daily_remaining": "0.00",
            "monthly_remaining": "350.00"}]
    staff = auth_headers(client, make_user(bank, role="teller"))
    set_limits(client, staff, alice.id, "200.00", None)
    assert send(bank, alice, source, payee, "150.00", limits=defaults).status == "succeeded"
    assert send(bank, alice, source, payee, "250.00", limits=defaults).error_code == "limit_exceeded"  # monthly 400


def test_who_may_set_limits_and_what_is_valid(bank, client):
    alice = make_user(bank)
    open_account(bank, alice, "USD")
    teller = make_user(bank, role="teller")
    customer = auth_headers(client, alice)
    forbidden = set_limits(client, customer, alice.id, "1.00", "2.00")
    assert forbidden.status_code == 403
    staff = auth_headers(client, teller)
    for daily, monthly, currency in (
        ("1.001", "2.00", "EUR"), (5, "2.00", "EUR"), ("0", "2.00", "EUR"), ("-1", "2.00", "EUR"),
        ("3.00", "2.00", "EUR"), ("1e3", "2.00", "EUR"), ("1.5", "2", "JPY"), ("1.00", "2.00", "XXX"),
        ("1" * 19, "1" * 19, "EUR"),
    ):
        response = set_limits(client, staff, alice.id, daily, monthly, currency)
        assert response.status_code == 422, (daily, monthly, currency, response.get_json())
    partial = client.put(f"/api/v1/customers/{alice.id}/limits", json={"currency": "EUR"}, headers=staff)
    assert partial.status_code == 422
    assert set_limits(client, staff, teller.id, "1.00", "2.00").status_code == 404
    assert set_limits(client, staff, str(uuid.uuid4()), "1.00", "2.00").status_code == 404
    assert set_limits(client, staff, alice.id, "1000", "5000", "JPY").status_code == 200
    assert me_limits(client, alice) == {
        "JPY": {"currency": "JPY", "daily": "1000", "monthly": "5000", "daily_remaining": "1000",
                "monthly_remaining": "5000"},
        "USD": {"currency": "USD", "daily": None, "monthly": None, "daily_remaining": None, "monthly_remaining": None},
    }
    assert client.get("/api/v1/auth/me", headers=staff).get_json()["limits"] == []
    audit = client.get("/api/v1/admin/audit?action=customer.limits_set",
                       headers=auth_headers(client, make_user(bank, role="admin"))).get_json()
    assert [e["details"] for e in audit["items"]] == [{"currency": "JPY", "daily": "1000", "monthly": "5000"}]
    with bank.db.transaction() as s:
        assert s.scalar(select(Transfer.id)) is None
