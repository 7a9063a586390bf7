"""Batch transfers: one job for up to 1000 transfers, all or none with `atomic`, each item its own outcome without;
accepted over HTTP, posted by the core function the worker calls, on real PostgreSQL."""

from __future__ import annotations

import os
import queue
import random
import threading
import time
import uuid
from collections import Counter

from sqlalchemy import func, select, update

from core.bank import Bank
from core.ledger import check_ledger
from core.models import Account, Entry, Job, Transfer
from core.settings import Settings
from core.setup import prepare
from core.transfers import (
    BatchRequest,
    TransferRequest,
    post_transfer_batch,
    post_transfer_jobs,
    request_transfer_batch,
)
from tests.support import accept_transfer, auth_headers, make_user, open_account

BATCH = "/api/v1/transfers/batch"


def item(source, destination, amount="1.00", currency="EUR", **extra):
    return {"source_account_id": source, "destination_account_id": destination, "amount": amount,
            "currency": currency, **extra}


def send(client, headers, items, key=None, atomic=False):
    body = {"items": items, "atomic": atomic}
    return client.post(BATCH, json=body, headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def balances(bank, ids):
    with bank.db.transaction() as s:
        return {a.id: a.balance for a in s.scalars(select(Account).where(Account.id.in_(ids)))}


def counts(bank):
    with bank.db.transaction() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Job, Transfer, Entry))


def job(bank, job_id):
    with bank.db.transaction() as s:
        return s.get(Job, job_id)


def test_one_bad_item_refuses_the_whole_batch_naming_its_index(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    dollars = open_account(bank, bob, "USD")
    before = counts(bank)
    items = [item(source, destination), item(source, dollars), item(source, destination)]
    response = send(client, auth_headers(client, alice), items, atomic=True)
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["code"] == "batch_items_invalid"
    assert list(problem["errors"]) == ["items.1.currency"]
    assert problem["item_errors"] == [
        {"index": 1, "field": "currency", "code": "currency_mismatch",
         "detail": "The currency must match both accounts."}
    ]
    assert counts(bank) == before


def test_every_bad_item_is_named_by_index(bank, client, monkeypatch):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    bobs, frozen = open_account(bank, bob, "EUR", 10_00), open_account(bank, bob, "EUR")
    with bank.db.transaction() as s:
        s.execute(update(Account).where(Account.id == frozen).values(status="frozen"))
        number = s.get(Account, destination).number
    before = counts(bank)
    items = [
        item(source, destination),
        item(bobs, destination),  # not hers: named, without saying whether it exists
        item(source, source),
        item(source, frozen),
        item(source, destination, amount="1.001"),
        item(source, destination, amount="1000.00"),  # at the confirmation threshold
        {"source_account_id": source, "destination_account_number": "0000000000", "amount": "1.00", "currency": "EUR"},
        {"source_account_id": source, "destination_account_number": number, "amount": "1.00", "currency": "EUR"},
        item(source, "no-such-account"),
    ]
    problem = send(client, auth_headers(client, alice), items).get_json()
    assert problem["status"] == 422 and problem["code"] == "batch_items_invalid"
    assert {(e["index"], e["field"], e["code"]) for e in problem["item_errors"]} == {
        (1, "source_account_id", "account_not_found"),
        (2, "destination_account_id", "same_account"),
        (3, "destination_account_id", "account_frozen"),
        (4, "amount", "invalid_amount"),
        (5, "amount", "confirmation_required"),
        (6, "destination_account_number", "account_not_found"),
        (8, "destination_account_id", "account_not_found"),
    }
    assert set(problem["errors"]) == {f"items.{e['index']}.{e['field']}" for e in problem["item_errors"]}
    assert problem["detail"].startswith("7 of 9 items")
    assert counts(bank) == before


def test_shape_errors_name_the_index_and_batches_take_no_execute_at(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice)
    before = counts(bank)
    scheduled = item(source, destination, execute_at="2030-01-01T00:00:00Z")
    response = send(client, headers, [item(source, destination), scheduled, item(source, destination, amount=5)])
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors["items.1.execute_at"] == ["Not allowed in a batch; schedule single transfers instead."]
    assert "items.2.amount" in errors
    too_many = send(client, headers, [item(source, destination)] * 1001)
    assert too_many.status_code == 422 and "items" in too_many.get_json()["errors"]
    assert send(client, headers, []).status_code == 422
    not_bool = client.post(BATCH, json={"items": [item(source, destination)], "atomic": "yes"},
                           headers={**headers, "Idempotency-Key": "nb"})
    assert not_bool.status_code == 422 and "atomic" in not_bool.get_json()["errors"]
    assert client.post(BATCH, json={"items": []}, headers=headers).get_json()["code"] == "idempotency_key_required"
    assert counts(bank) == before


def test_atomic_batch_with_insufficient_funds_mid_way_posts_nothing(bank, client):
    alice, bob, carol = make_user(bank), make_user(bank), make_user(bank)
    source = open_account(bank, alice, "EUR", 100_00)
    b, c = open_account(bank, bob, "EUR"), open_account(bank, carol, "EUR")
    items = [item(source, b, "30.00"), item(source, c, "30.00"), item(source, b, "50.00"), item(source, c, "10.00")]
    accepted = send(client, auth_headers(client, alice), items, atomic=True)
    assert accepted.status_code == 202 and accepted.headers["Location"] == f"/api/v1/jobs/{accepted.get_json()['id']}"
    body = accepted.get_json()
    assert (body["kind"], body["status"]) == ("transfer_batch", "queued")
    entries_before = counts(bank)[2]

    report = post_transfer_batch(bank.db, body["id"])
    assert (report.posted, report.failed, report.status) == (0, 4, "failed")
    finished = client.get(body["links"]["self"], headers=auth_headers(client, alice)).get_json()
    assert finished["status"] == "failed" and finished["error"]["code"] == "batch_failed"
    result = finished["result"]
    assert (result["atomic"], result["posted"], result["failed"]) == (True, 0, 4)
    assert [(i["index"], i["status"], i["failure_code"]) for i in result["items"]] == [
        (0, "failed", "batch_failed"),
        (1, "failed", "batch_failed"),
        (2, "failed", "insufficient_funds"),
        (3, "failed", "batch_failed"),
    ]
    assert counts(bank)[2] == entries_before
    assert balances(bank, [source, b, c]) == {source: 100_00, b: 0, c: 0}
    third = client.get(f"/api/v1/transfers/{result['items'][2]['transfer_id']}", headers=auth_headers(client, alice))
    assert third.get_json()["status"] == "failed" and third.get_json()["failure_code"] == "insufficient_funds"
    assert third.get_json()["job_id"] == body["id"] and third.get_json()["batch_index"] == 2
    assert check_ledger(bank.db)["ok"]


def test_independent_batch_posts_what_it_can_and_reports_each_item(bank, client):
    alice, bob, carol = make_user(bank), make_user(bank), make_user(bank)
    source = open_account(bank, alice, "EUR", 100_00)
    b, c = open_account(bank, bob, "EUR"), open_account(bank, carol, "EUR")
    items = [item(source, b, "30.00"), item(source, c, "30.00"), item(source, b, "50.00"), item(source, c, "10.00")]
    headers = auth_headers(client, alice)
    body = send(client, headers, items).get_json()
    report = post_transfer_batch(bank.db, body["id"])
    assert (report.posted, report.failed, report.status) == (3, 1, "succeeded")
    finished = client.get(body["links"]["self"], headers=headers).get_json()
    assert finished["status"] == "succeeded" and finished["error"] is None
    assert [(i["status"], i["failure_code"]) for i in finished["result"]["items"]] == [
        ("posted", None), ("posted", None), ("failed", "insufficient_funds"), ("posted", None)
    ]
    assert balances(bank, [source, b, c]) == {source: 30_00, b: 30_00, c: 40_00}
    for outcome in finished["result"]["items"]:
        transfer = client.get(f"/api/v1/transfers/{outcome['transfer_id']}", headers=headers).get_json()
        assert transfer["status"] == outcome["status"] and transfer["job_id"] == body["id"]
        assert transfer["batch_index"] == outcome["index"]
    statement = client.get(f"/api/v1/accounts/{source}/entries", headers=headers).get_json()["items"]
    assert [e["balance_after"] for e in statement[:3]] == ["30.00", "40.00", "70.00"]
    assert check_ledger(bank.db)["ok"]


def test_a_thousand_items_are_accepted_and_posted_quickly(bank, client):
    alice = make_user(bank)
    source = open_account(bank, alice, "EUR", 10_000_00)
    payees = [open_account(bank, make_user(bank), "EUR") for _ in range(20)]
    items = [item(source, payees[i % 20], f"{1 + i % 7}.00", description=f"invoice {i}") for i in range(1000)]
    headers = auth_headers(client, alice)
    started = time.perf_counter()
    response = send(client, headers, items)
    accepted_in = time.perf_counter() - started
    assert response.status_code == 202, response.get_json()
    started = time.perf_counter()
    report = post_transfer_batch(bank.db, response.get_json()["id"])
    posted_in = time.perf_counter() - started
    print(f"\nbatch of 1000: accepted in {accepted_in * 1000:.0f} ms, posted in {posted_in * 1000:.0f} ms")
    assert (report.posted, report.failed) == (1000, 0)
    total = sum(1 + i % 7 for i in range(1000)) * 100
    assert balances(bank, [source])[source] == 10_000_00 - total
    assert sum(balances(bank, payees).values()) == total
    assert check_ledger(bank.db)["ok"]
    assert accepted_in + posted_in < 10


def test_one_key_makes_one_batch_job(bank, client):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    headers = auth_headers(client, alice)
    items = [item(source, destination, "2.00"), item(source, destination, "3.00")]
    first = send(client, headers, items, key="batch-1")
    again = send(client, headers, items, key="batch-1")
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    different = send(client, headers, items[:1], key="batch-1")
    assert different.status_code == 422 and different.get_json()["code"] == "idempotency_key_reused"
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "transfer_batch")) == 1
        items_of_job = select(func.count()).select_from(Transfer).where(Transfer.job_id == first.get_json()["id"])
        assert s.scalar(items_of_job) == 2


def test_another_users_accounts_and_an_unverified_sender_are_refused(bank, client):
    alice, mallory = make_user(bank), make_user(bank)
    unverified = make_user(bank, kyc="pending")
    victim, mine = open_account(bank, alice, "EUR", 100_00), open_account(bank, mallory, "EUR")
    own = open_account(bank, unverified, "EUR")
    before = counts(bank)
    stolen = send(client, auth_headers(client, mallory), [item(mine, victim), item(victim, mine)])
    assert stolen.status_code == 422
    assert stolen.get_json()["item_errors"] == [
        {"index": 1, "field": "source_account_id", "code": "account_not_found", "detail": "No such account."}
    ]
    kyc = send(client, auth_headers(client, unverified), [item(own, mine)])
    assert kyc.status_code == 403 and kyc.get_json()["code"] == "kyc_required"
    assert counts(bank) == before
    assert balances(bank, [victim])[victim] == 100_00


def test_a_batch_delivered_twice_at_once_and_once_late_posts_once(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    for round_ in range(5):
        cmd = BatchRequest(items=tuple(_cmd(source, destination, "1.00") for _ in range(10)), atomic=round_ % 2 == 0)
        job_id = request_transfer_batch(bank, alice, cmd, idempotency_key=f"d{round_}", body={"r": round_}).body["id"]
        barrier = threading.Barrier(2)
        reports = []

        def deliver(job_id=job_id, barrier=barrier, reports=reports):
            barrier.wait()
            reports.append(post_transfer_batch(bank.db, job_id))

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        reports.append(post_transfer_batch(bank.db, job_id))
        assert sorted(r.posted for r in reports) == [0, 0, 10]
        assert job(bank, job_id).attempts == 1
    assert balances(bank, [source, destination]) == {source: 50_00, destination: 50_00}
    with bank.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.account_id == destination)) == 50


def _cmd(source, destination, amount):
    return TransferRequest(source_account_id=source, destination_account_id=destination, amount=amount, currency="EUR")


def test_concurrent_overlapping_batches_and_transfers_conserve_money_without_deadlock(bank):
    owners = [make_user(bank) for _ in range(5)]
    accounts = [open_account(bank, owner, "EUR", 200_00) for owner in owners]
    total_before = sum(balances(bank, accounts).values())
    work: queue.Queue[tuple[str, str] | None] = queue.Queue()
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for n in range(8):
                owner = rng.randrange(len(owners))
                others = [a for a in accounts if a != accounts[owner]]
                items = tuple(_cmd(accounts[owner], rng.choice(others), f"{rng.randint(1, 4000) / 100:.2f}")
                              for _ in range(rng.randint(1, 40)))
                accepted = request_transfer_batch(
                    bank, owners[owner], BatchRequest(items=items, atomic=rng.random() < 0.5),
                    idempotency_key=uuid.uuid4().hex, body={"seed": seed, "n": n},
                )
                single = accept_transfer(bank, owners[owner], accounts[owner], rng.choice(others), "3.00")
                for _ in range(2):  # at-least-once delivery: everything twice
                    work.put(("batch", accepted.body["id"]))
                    work.put(("single", single.body["id"]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def worker() -> None:
        try:
            while (task := work.get()) is not None:
                kind, job_id = task
                for _ in range(200):
                    post = post_transfer_batch if kind == "batch" else post_transfer_jobs
                    if not post(bank.db, job_id).own_job_busy:
                        break
                    time.sleep(0.01)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    started = time.perf_counter()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    workers = [threading.Thread(target=worker) for _ in range(4)]
    for t in clients + workers:
        t.start()
    for t in clients:
        t.join()
    for _ in workers:
        work.put(None)
    for t in workers:
        t.join()
    assert not errors, errors
    with bank.db.transaction() as s:
        statuses = Counter(s.scalars(select(Job.status).where(Job.kind.in_(("transfer", "transfer_batch")))))
        posted = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.status == "posted",
                                                                           Transfer.kind == "transfer"))
        entries = s.scalar(select(func.count()).select_from(Entry).join(Transfer).where(Transfer.kind == "transfer"))
        pending = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.status == "pending"))
    print(f"\noverlapping batches: {dict(statuses)} in {time.perf_counter() - started:.1f}s")
    assert set(statuses) <= {"succeeded", "failed"} and sum(statuses.values()) == 6 * 8 * 2
    assert pending == 0 and entries == 2 * posted
    after = balances(bank, accounts)
    assert sum(after.values()) == total_before and min(after.values()) >= 0
    assert check_ledger(bank.db)["ok"]


def test_a_posting_the_database_refuses_is_told_apart_item_by_item(bank):
    alice, bob = make_user(bank), make_user(bank)
    source, destination = open_account(bank, alice, "EUR", 100_00), open_account(bank, bob, "EUR")
    outcomes = {}
    for atomic in (False, True):
        cmd = BatchRequest(items=tuple(_cmd(source, destination, "2.00") for _ in range(4)), atomic=atomic)
        job_id = request_transfer_batch(bank, alice, cmd, idempotency_key=f"r{atomic}", body={"a": atomic}).body["id"]
        with bank.db.transaction() as s:  # a corrupted row that slipped past the checks: wrong currency
            third = update(Transfer).where(Transfer.job_id == job_id, Transfer.batch_index == 2)
            s.execute(third.values(currency="USD"))
        report = post_transfer_batch(bank.db, job_id)
        outcomes[atomic] = [i["failure_code"] for i in job(bank, job_id).result["items"]], report.status
    assert outcomes[False] == ([None, None, "posting_rejected", None], "succeeded")
    assert outcomes[True] == (["batch_failed", "batch_failed", "posting_rejected", "batch_failed"], "failed")
    assert balances(bank, [source, destination]) == {source: 94_00, destination: 6_00}
    assert check_ledger(bank.db)["ok"]


def test_batches_post_on_the_embedded_sqlite_default(tmp_path):
    settings = Settings.from_env({"BANKQ_DATA_DIR": str(tmp_path), "BANKQ_SECRET_KEY": os.environ["BANKQ_SECRET_KEY"]})
    lite = Bank(settings)
    try:
        assert not lite.db.is_postgres
        prepare(lite)
        alice, bob = make_user(lite), make_user(lite)
        source, destination = open_account(lite, alice, "EUR", 10_00), open_account(lite, bob, "EUR")
        for atomic in (True, False):
            cmd = BatchRequest(items=tuple(_cmd(source, destination, "4.00") for _ in range(3)), atomic=atomic)
            accepted = request_transfer_batch(lite, alice, cmd, idempotency_key=f"l{atomic}", body={"a": atomic})
            job_id = accepted.body["id"]
            report = post_transfer_batch(lite.db, job_id)
            assert (report.posted, report.failed) == ((0, 3) if atomic else (2, 1))
            assert post_transfer_batch(lite.db, job_id).posted == 0
        assert balances(lite, [source, destination]) == {source: 2_00, destination: 8_00}
        assert check_ledger(lite.db)["ok"]
    finally:
        lite.db.dispose()
