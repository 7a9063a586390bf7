"""The whole machine over HTTP: real gunicorn, real Celery workers and beat, PostgreSQL and Redis, with Redis or
RabbitMQ as the broker."""

from __future__ import annotations

import time

import psycopg
import pytest
import requests

from tests.e2e.stack import ADMIN, Client
from tests.support import libpq

pytestmark = pytest.mark.e2e



def test_full_transfer_flow(broker_env, stack_factory):
    stack = stack_factory(broker_env)
    client = Client(stack.start_api())
    stack.start_worker()
    stack.start_beat()
    admin = client.login(*ADMIN)
    alice_id, alice = client.customer("alice")
    _, bob = client.customer("bob")
    source, destination = client.account(alice), client.account(bob)
    client.deposit(admin, source, "100.00", "fund-alice")

    accepted = client.transfer(alice, "pay-bob", source, destination, "40.25", description="rent")
    assert accepted.status_code == 202 and accepted.headers["Location"] == f"/api/v1/jobs/{accepted.json()['id']}"
    job = client.wait_job(alice, accepted.json()["id"])
    assert job["status"] == "succeeded" and job["attempts"] == 1
    replay = client.transfer(alice, "pay-bob", source, destination, "40.25", description="rent")
    assert replay.json()["id"] == job["id"] and replay.headers["Idempotent-Replayed"] == "true"

    too_much = client.transfer(alice, "too-much", source, destination, "60.00")
    failed = client.wait_job(alice, too_much.json()["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "insufficient_funds"

    assert client.balance(alice, source) == "59.75"
    assert client.balance(bob, destination) == "40.25"
    lines = client.call("GET", f"/accounts/{source}/entries", alice).json()["items"]
    assert [(e["amount"], e["description"]) for e in lines] == [("-40.25", "rent"), ("100.00", "Deposit")]
    seen = client.call("GET", "/admin/queues", admin).json()
    assert seen["workers"] and seen["workers_status"] == "answered"
    assert {q["name"] for q in seen["queues"]} >= {"transfers", "kyc", "notify", "default"}
    check = client.call("GET", "/admin/ledger/check", admin).json()
    assert check["ok"] and check["accounts_checked"] >= 2
    assert client.call("GET", f"/accounts/{source}", bob).status_code == 404
    assert alice_id


def _wait_for_lock_waiter(database_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%accounts%'"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.1)
    raise TimeoutError("no worker is waiting on the account lock")


def test_worker_killed_while_holding_a_job_still_finishes_once(broker_env, stack_factory):
    """On Redis the stuck job is re-driven; RabbitMQ also redelivers the unacknowledged message at once."""
    stack = stack_factory(broker_env)
    client = Client(stack.start_api())
    stack.start_worker("worker-1")
    stack.start_beat()
    admin = client.login(*ADMIN)
    alice, bob, source, destination = client.payer_and_payee(admin, "10.00")

    # Hold the source account's row so the worker blocks inside its posting transaction.
    blocker = psycopg.connect(libpq(broker_env["DATABASE_URL"]))
    blocker.execute("SELECT id FROM accounts WHERE id = %s FOR NO KEY UPDATE", (source,))
    job_id = client.transfer(alice, "held", source, destination, "7.00").json()["id"]
    _wait_for_lock_waiter(broker_env["DATABASE_URL"])
    stack.kill("worker-1")  # SIGKILL to the whole worker: main process and pool children
    blocker.rollback()
    blocker.close()

    stack.start_worker("worker-2")
    job = client.wait_job(alice, job_id, timeout=90)
    assert job["status"] == "succeeded"
    assert client.balance(alice, source) == "3.00" and client.balance(bob, destination) == "7.00"
    with psycopg.connect(libpq(broker_env["DATABASE_URL"])) as conn:
        entries = conn.execute(
            "SELECT count(*) FROM entries e JOIN transfers t ON t.id = e.transfer_id WHERE t.job_id = %s", (job_id,)
        ).fetchone()[0]
    assert entries == 2
    assert client.call("GET", "/admin/ledger/check", admin).json()["ok"]


def test_broker_down_at_accept_then_job_completes(e2e_env, broker_outage, stack_factory):
    stack = stack_factory({**e2e_env, "CELERY_BROKER_URL": broker_outage.url})
    client = Client(stack.start_api())
    stack.start_worker()
    stack.start_beat()
    admin = client.login(*ADMIN)
    _, alice = client.customer("alice")
    _, bob = client.customer("bob")
    source, destination = client.account(alice), client.account(bob)
    client.deposit(admin, source, "20.00", "fund")

    broker_outage.stop()
    ready = requests.get(f"{stack.base}/ready", timeout=10)
    assert ready.status_code == 503 and ready.json()["failed"] == ["broker"] and "Retry-After" in ready.headers
    started = time.monotonic()
    accepted = client.transfer(alice, "while-down", source, destination, "5.00")
    assert accepted.status_code == 202, accepted.text
    assert time.monotonic() - started < 8, "accepting must not hang on a dead broker"
    job_id = accepted.json()["id"]
    time.sleep(2)
    assert client.call("GET", f"/jobs/{job_id}", alice).json()["status"] == "queued"

    broker_outage.start()
    job = client.wait_job(alice, job_id, timeout=90)
    assert job["status"] == "succeeded"
    assert client.balance(bob, destination) == "5.00"
    assert requests.get(f"{stack.base}/ready", timeout=10).status_code == 200
    assert client.call("GET", "/admin/ledger/check", admin).json()["ok"]


def test_a_batch_posts_through_the_real_worker(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api())
    stack.start_worker()
    admin = client.login(*ADMIN)
    alice, bob, source, destination = client.payer_and_payee(admin, "10.00")
    items = [{"source_account_id": source, "destination_account_id": destination, "amount": amount, "currency": "EUR"}
             for amount in ("4.00", "5.00", "3.00")]
    accepted = client.call("POST", "/transfers/batch", alice, "batch-1", json={"items": items, "atomic": False})
    assert accepted.status_code == 202, accepted.text
    job = client.wait_job(alice, accepted.json()["id"])
    assert job["status"] == "succeeded"
    assert [(i["index"], i["status"]) for i in job["result"]["items"]] == [(0, "posted"), (1, "posted"), (2, "failed")]
    assert job["result"]["items"][2]["failure_code"] == "insufficient_funds"
    assert client.balance(bob, destination) == "9.00"


def test_a_teller_reverses_a_posted_transfer_through_the_real_worker(e2e_env, stack_factory):
    stack = stack_factory(e2e_env)
    client = Client(stack.start_api())
    stack.start_worker()
    admin = client.login(*ADMIN)
    alice, bob, source, destination = client.payer_and_payee(admin, "10.00")
    paid = client.wait_job(alice, client.transfer(alice, "pay", source, destination, "6.00").json()["id"])
    transfer_path = paid["links"]["resource"].removeprefix("/api/v1")
    reverse = client.call("POST", f"{transfer_path}/reverse", admin, "undo", json={"reason": "Paid the wrong payee"})
    assert reverse.status_code == 202, reverse.text
    assert client.wait_job(admin, reverse.json()["id"])["status"] == "succeeded"
    assert client.balance(alice, source) == "10.00" and client.balance(bob, destination) == "0.00"
    original = client.call("GET", transfer_path, alice).json()
    assert original["reversed_by"]
    again = client.call("POST", f"{transfer_path}/reverse", admin, "undo-again", json={"reason": "Twice"})
    assert (again.status_code, again.json()["code"]) == (409, "already_reversed")
    assert client.call("GET", "/admin/ledger/check", admin).json()["ok"]
