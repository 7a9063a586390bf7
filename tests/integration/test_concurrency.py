"""Invariants under concurrency on real PostgreSQL: money is conserved, effects happen once."""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from collections import Counter

from sqlalchemy import func, select

from core.ledger import check_ledger
from core.models import Account, Entry, Job, Transfer
from core.transfers import TransferRequest, post_transfer_jobs, request_transfer
from tests.support import auth_headers, make_user, open_account

CLIENTS, WORKERS, TRANSFERS_PER_CLIENT = 8, 4, 40


def _balances(bank, ids):
    with bank.db.transaction() as s:
        return {a.id: a.balance for a in s.scalars(select(Account).where(Account.id.in_(ids)))}


def test_random_concurrent_transfers_conserve_money(bank):
    owners = [make_user(bank) for _ in range(4)]
    accounts = [open_account(bank, owner, "EUR", 50_00) for owner in owners]
    owner_of = dict(zip(accounts, owners, strict=True))
    total_before = sum(_balances(bank, accounts).values())
    jobs_to_post: queue.Queue[str | None] = queue.Queue()
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(TRANSFERS_PER_CLIENT):
                source, destination = rng.sample(accounts, 2)
                cmd = TransferRequest(
                    source_account_id=source,
                    destination_account_id=destination,
                    amount=f"{rng.randint(1, 2500) / 100:.2f}",
                    currency="EUR",
                )
                accepted = request_transfer(
                    bank,
                    owner_of[source],
                    cmd,
                    idempotency_key=uuid.uuid4().hex,
                    body={"seed": seed, "n": rng.random()},
                )
                # At-least-once delivery: every job is delivered twice.
                jobs_to_post.put(accepted.body["id"])
                jobs_to_post.put(accepted.body["id"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def worker() -> None:
        try:
            while (job_id := jobs_to_post.get()) is not None:
                for _ in range(200):
                    if not post_transfer_jobs(bank.db, job_id, batch_size=20).own_job_busy:
                        break
                    time.sleep(0.01)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    started = time.perf_counter()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    workers = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in clients + workers:
        t.start()
    for t in clients:
        t.join()
    for _ in workers:
        jobs_to_post.put(None)
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - started
    assert not errors, errors

    with bank.db.transaction() as s:
        outcomes = Counter(s.scalars(select(Job.status).where(Job.kind == "transfer")))
        failures = Counter(s.scalars(select(Transfer.failure_code).where(Transfer.status == "failed")))
        posted = s.scalar(
            select(func.count()).select_from(Transfer).where(Transfer.status == "posted", Transfer.kind == "transfer")
        )
        transfer_entries = s.scalar(
            select(func.count()).select_from(Entry).join(Transfer).where(Transfer.kind == "transfer")
        )
    balances = _balances(bank, accounts)
    print(
        f"\nconcurrency: {CLIENTS * TRANSFERS_PER_CLIENT} transfers, {CLIENTS} clients, {WORKERS} workers, "
        f"every job delivered twice, {elapsed:.1f}s; jobs {dict(outcomes)}; failures {dict(failures)}"
    )

    assert sum(outcomes.values()) == CLIENTS * TRANSFERS_PER_CLIENT
    assert set(outcomes) <= {"succeeded", "failed"}
    assert set(failures) <= {"insufficient_funds"}
    assert transfer_entries == 2 * posted == 2 * outcomes["succeeded"]
    assert sum(balances.values()) == total_before
    assert min(balances.values()) >= 0
    assert check_ledger(bank.db)["ok"]


def test_same_job_delivered_to_two_workers_at_once_posts_once(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    for round_ in range(10):
        accepted = request_transfer(
            bank,
            alice,
            TransferRequest(
                source_account_id=source, destination_account_id=destination, amount="1.00", currency="EUR"
            ),
            idempotency_key=f"dup-{round_}",
            body={"round": round_},
        )
        job_id = accepted.body["id"]
        barrier = threading.Barrier(2)
        reports = []

        def deliver(job_id: str, barrier: threading.Barrier, reports: list) -> None:
            barrier.wait()
            reports.append(post_transfer_jobs(bank.db, job_id, batch_size=1))

        threads = [threading.Thread(target=deliver, args=(job_id, barrier, reports)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # A third, late delivery (e.g. a redelivered message after a restart) finds nothing to do.
        reports.append(post_transfer_jobs(bank.db, job_id, batch_size=1))
        assert sum(r.posted.count(job_id) for r in reports) == 1
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.account_id == destination)) == 10
    assert _balances(bank, [source, destination]) == {source: 90_00, destination: 10_00}


def test_twenty_concurrent_requests_with_one_key_make_one_job(bank, app):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    headers = auth_headers(app.test_client(), alice, **{"Idempotency-Key": "same-key"})
    body = {"source_account_id": source, "destination_account_id": destination, "amount": "5.00", "currency": "EUR"}
    barrier = threading.Barrier(20)
    answers: list[tuple[int, dict]] = []

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/v1/transfers", json=body, headers=headers)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {202, 409}, answers
    assert statuses[202] >= 1
    assert len({b["id"] for status, b in answers if status == 202}) == 1
    assert all(b["code"] == "idempotency_key_in_use" for status, b in answers if status == 409)
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 2  # the funding deposit and this transfer
